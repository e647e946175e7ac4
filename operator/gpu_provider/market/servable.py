"""Why a decoded order cannot be served, in sentences a bid engine logs when it skips one.

Decoding accepts everything Spheron's SDK can write, including values no provider can run
(a service with no CPU, a volume of 0 bytes, GPU constraints we do not understand). Refusing
them at decode time would hide the order; instead the bid engine asks here and skips it with
the reason.
"""

from __future__ import annotations

from gpu_provider.market.spec import OrderSpec


def unservable_reasons(spec: OrderSpec) -> tuple[str, ...]:
    """Every reason this order cannot be served as written; empty when nothing stands out."""
    reasons: list[str] = []
    for service in spec.services:
        where = f"service {service.name!r}"
        if service.cpu_millicores == 0:
            reasons.append(f"{where} asks for no CPU")
        if service.memory_bytes == 0:
            reasons.append(f"{where} asks for no memory")
        reasons.extend(
            f"{where}: volume {volume.name!r} has no size"
            for volume in service.storage
            if volume.size_bytes == 0
        )
        reasons.extend(
            f"{where}: GPU constraint {key!r} is not understood"
            for key, _ in service.gpu.extra_attributes
        )
    return tuple(reasons)
