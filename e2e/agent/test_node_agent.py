"""The node agent against a real kube-apiserver, with NVML played by the scripted double.

What a provider sees on the Node: the gpu-facts annotation appears, stays put (same
resourceVersion) while only utilisation moves, changes as soon as a GPU fails, and comes back
when someone deletes it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from kubernetes import client
from tests.agent.fake_nvml import FakeGpu, FakeNvml, a100_mig, h100

from gpu_provider.agent.loop import Agent, AgentOptions
from gpu_provider.agent.metrics import AgentMetrics
from gpu_provider.agent.nvml import Nvml
from gpu_provider.api.nodefacts import GPU_FACTS_ANNOTATION, NodeGpuFacts, parse_node_facts
from gpu_provider.kube.nodes import NodeAnnotation, NodeApiError, NodeNotFound

DEADLINE_S = 20.0


@dataclass
class RunningAgent:
    agent: Agent
    nvml: FakeNvml
    gpus: list[FakeGpu]
    node: str


@pytest.fixture
async def running_agent(
    core: client.CoreV1Api, api_client: client.ApiClient
) -> AsyncIterator[RunningAgent]:
    # A Node of its own, so no other test's view of the topology Nodes changes.
    node = f"agent-{uuid.uuid4().hex[:8]}"
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=node)))
    await settled(core, node)
    gpus = [h100(0), a100_mig(1)]
    fake = FakeNvml(gpus)
    nvml = Nvml(fake)
    nvml.start()
    agent = Agent(
        nvml,
        NodeAnnotation(api_client, node, GPU_FACTS_ANNOTATION),
        AgentMetrics(hostname=node),
        AgentOptions(interval=0.2, verify_interval=1.0, retry_on=(NodeApiError,)),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        yield RunningAgent(agent, fake, gpus, node)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=DEADLINE_S)
        nvml.close()
        core.delete_node(node)


async def settled(core: client.CoreV1Api, node: str) -> None:
    """Wait until kwok has made the Node Ready and the node controller lifted its not-ready
    taint; after that nothing but the agent writes it, so its resourceVersion is ours to watch.
    """
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = await asyncio.to_thread(core.read_node, node)
        conditions = (got.status.conditions if got.status else None) or []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if ready and got.spec is not None and not got.spec.taints:
            return
        assert time.monotonic() < deadline, f"Node {node} never became Ready and untainted"
        await asyncio.sleep(0.1)


async def node_facts(core: client.CoreV1Api, node: str) -> tuple[NodeGpuFacts | None, str]:
    got = await asyncio.to_thread(core.read_node, node)
    assert got.metadata is not None
    value = (got.metadata.annotations or {}).get(GPU_FACTS_ANNOTATION)
    facts = None if value is None else parse_node_facts(value)
    return facts, str(got.metadata.resource_version)


async def until(
    core: client.CoreV1Api, node: str, check: Callable[[NodeGpuFacts | None], bool], what: str
) -> tuple[NodeGpuFacts | None, str]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        facts, version = await node_facts(core, node)
        if check(facts):
            return facts, version
        assert time.monotonic() < deadline, f"{what} did not happen; the Node holds {facts}"
        await asyncio.sleep(0.1)


async def polls_pass(agent: Agent, count: int) -> None:
    target = agent.polls + count
    deadline = time.monotonic() + DEADLINE_S
    while agent.polls < target:
        assert time.monotonic() < deadline, f"the agent polled {agent.polls}, not {target} times"
        await asyncio.sleep(0.05)


async def test_the_agent_puts_its_gpus_on_the_node(
    running_agent: RunningAgent, core: client.CoreV1Api
) -> None:
    facts, _ = await until(core, running_agent.node, lambda f: f is not None, "annotation")
    assert facts is not None
    assert facts.driver_version == "550.54.15"
    assert facts.cuda_version == "12.4"
    assert [(g.name, g.pci_device_id, g.mig_enabled, g.healthy) for g in facts.gpus] == [
        ("NVIDIA H100 80GB HBM3", "2330", False, True),
        ("NVIDIA A100-SXM4-80GB", "20b2", True, True),
    ]


async def test_utilisation_alone_never_rewrites_the_node(
    running_agent: RunningAgent, core: client.CoreV1Api
) -> None:
    facts, version = await until(core, running_agent.node, lambda f: f is not None, "annotation")
    writes = running_agent.agent.writes
    h100_gpu = running_agent.gpus[0]
    for step in range(5):
        h100_gpu.util_gpu, h100_gpu.temperature_c = 20 * step, 40 + step
        h100_gpu.used_mib, h100_gpu.power_mw = 10_000 * step, 100_000 + 100_000 * step
        await polls_pass(running_agent.agent, 2)
    facts_after, after = await node_facts(core, running_agent.node)
    assert after == version, "the Node was written although only utilisation changed"
    assert facts_after == facts
    assert running_agent.agent.writes == writes, "the agent sent a patch for nothing"


async def test_an_xid_79_makes_the_gpu_unhealthy_on_the_node_within_moments(
    running_agent: RunningAgent, core: client.CoreV1Api
) -> None:
    _, version = await until(core, running_agent.node, lambda f: f is not None, "annotation")
    running_agent.nvml.emit_xid(running_agent.gpus[1], 79)
    facts, after = await until(
        core,
        running_agent.node,
        lambda f: f is not None and not f.gpus[1].healthy,
        "GPU 1 unhealthy",
    )
    assert facts is not None
    assert facts.gpus[1].problems == ("xid 79",)
    assert facts.gpus[0].healthy is True
    assert after != version


async def test_an_uncorrectable_ecc_error_found_by_polling_reaches_the_node(
    running_agent: RunningAgent, core: client.CoreV1Api
) -> None:
    await until(core, running_agent.node, lambda f: f is not None, "annotation")
    running_agent.gpus[0].ecc_volatile = 1
    facts, _ = await until(
        core, running_agent.node, lambda f: f is not None and not f.gpus[0].healthy, "unhealthy"
    )
    assert facts is not None
    assert facts.gpus[0].problems == ("uncorrectable ECC errors: 1",)


async def test_a_removed_annotation_is_written_again(
    running_agent: RunningAgent, core: client.CoreV1Api
) -> None:
    await until(core, running_agent.node, lambda f: f is not None, "annotation")
    await asyncio.to_thread(
        core.patch_node,
        running_agent.node,
        {"metadata": {"annotations": {GPU_FACTS_ANNOTATION: None}}},
    )
    facts, _ = await until(core, running_agent.node, lambda f: f is not None, "rewrite")
    assert facts is not None
    assert len(facts.gpus) == 2


async def test_a_node_that_does_not_exist_is_named(api_client: client.ApiClient) -> None:
    store = NodeAnnotation(api_client, "no-such-node", GPU_FACTS_ANNOTATION)
    with pytest.raises(NodeNotFound, match=r"no-such-node.*NODE_NAME"):
        await store.read()
