"""The node agent (`gpu-provider node-agent`): NVML facts and health on the Node, and metrics.

`nvml` is the only module that calls NVML; `readings` and `facts` are pure; `metrics` exports
DCGM-named Prometheus metrics; `loop` decides when to write the annotation; `app` wires it all
and owns the exit codes. See docs/node-agent.md.
"""
