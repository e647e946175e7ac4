"""The only code that talks to the Kubernetes API (besides Kopf itself).

It uses the official `kubernetes` client, whose calls block: every call runs in a bounded
thread pool (`client.off_loop`), never on the event loop. Writes are server-side apply with
field manager `gpu-provider`.
"""
