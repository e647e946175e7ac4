"""The benchmark chain: 100,000 blocks holding 10,000 marketplace-shaped events.

Every 100th block carries one transaction to the event emitter (`emitter.py`) that logs ten
`OrderCreated` or ten `OrderMatched` events (alternating), with Spheron-sized arguments; the
blocks between are empty (`anvil_mine`). The chain is generated once (about 30 s), dumped
with `--state` into a cache folder outside the repository and loaded from there on later runs.

The pinned anvil slows down with every block one process mines (not with the blocks it
loads), so generation restarts anvil from its own dump every 20,000 blocks.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.chain.emitter import (
    EMITTER_ABI,
    ORDER_CREATED_ABI,
    ORDER_MATCHED_ABI,
    emit_calldata,
    init_code,
)

from gpu_provider.devnet.anvil import Anvil

# The pinned anvil pays per mined block for the Cancun/Prague history contracts (EIP-4788,
# EIP-2935) and for every historical state it keeps; neither matters to log queries.
ANVIL_ARGS: Final = ["--hardfork", "shanghai", "--prune-history", "1"]
BLOCKS: Final = 100_000
EVENT_BLOCKS: Final = 1_000
EVENTS_PER_BLOCK: Final = 10
_SEGMENT: Final = 200  # event blocks generated per anvil process
SPEC: Final = (
    "{n:llama-70b,pr:{a:[{k:region,v:us-east}]},s:[{n:inference,r:{i:1,c:{u:16000,a:[]},"
    "m:{u:68719476736,a:[]},s:[{n:default,a:[],u:214748364800}],g:{u:2,a:[{k:vendor/nvidia/"
    "model/h100,v:true},{k:req_vram,v:>=80}]},e:[{k:0,s:0}]},c:1}]}"
)


@dataclass(frozen=True)
class Dataset:
    state_file: Path
    emitter: str
    first_block: int
    last_block: int
    events: int

    @property
    def abi(self) -> list[dict[str, Any]]:
        return EMITTER_ABI


def _rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _receipt(url: str, tx_hash: str) -> dict[str, Any]:
    while True:
        receipt = _rpc(url, "eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return dict(receipt)
        time.sleep(0.01)


def _calldata(index: int, sender: str, emitter: str) -> str:
    base = index * EVENTS_PER_BLOCK
    if index % 2 == 0:
        rows = [
            (base + i, sender, 10**15 + i, 1800, sender, SPEC, 1, 0)
            for i in range(EVENTS_PER_BLOCK)
        ]
        return emit_calldata(ORDER_CREATED_ABI, rows)
    matched = [(base + i, emitter, 0, 7 + i, 10**15 + i, sender) for i in range(EVENTS_PER_BLOCK)]
    return emit_calldata(ORDER_MATCHED_ABI, matched)


def _fingerprint() -> str:
    text = json.dumps([ANVIL_ARGS, BLOCKS, EVENT_BLOCKS, EVENTS_PER_BLOCK, SPEC, init_code().hex()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_dataset(cache_dir: Path, log: Any = print) -> Dataset:
    """The cached chain, generated first if the cache has none for these parameters."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    state_file = cache_dir / f"chain-{_fingerprint()}.json"
    meta_file = state_file.with_suffix(".meta.json")
    if state_file.is_file() and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        return Dataset(state_file=state_file, **meta)
    log(f"generating the benchmark chain into {state_file} (once; about a minute)")
    started = time.monotonic()
    state_file.unlink(missing_ok=True)
    emitter = ""
    first_block = last_block = 0
    gap = BLOCKS // EVENT_BLOCKS - 1
    for segment_start in range(0, EVENT_BLOCKS, _SEGMENT):
        # A fresh anvil per segment: it slows down with every block it mines, not with the
        # number of blocks it loads.
        with Anvil(block_time=None, extra_args=[*ANVIL_ARGS, "--state", str(state_file)]) as anvil:
            url = anvil.url
            sender = _rpc(url, "eth_accounts")[0]
            if not emitter:
                deploy = _rpc(
                    url, "eth_sendTransaction", {"from": sender, "data": "0x" + init_code().hex()}
                )
                emitter = str(_receipt(url, deploy)["contractAddress"])
                first_block = int(_rpc(url, "eth_blockNumber"), 16) + 1
            for index in range(segment_start, min(segment_start + _SEGMENT, EVENT_BLOCKS)):
                data = _calldata(index, sender, emitter)
                tx_hash = _rpc(
                    url, "eth_sendTransaction", {"from": sender, "to": emitter, "data": data}
                )
                _receipt(url, tx_hash)
                _rpc(url, "anvil_mine", hex(gap))
            last_block = int(_rpc(url, "eth_blockNumber"), 16)
            log(f"  block {last_block}, {time.monotonic() - started:.0f} s")
    meta = {
        "emitter": emitter,
        "first_block": first_block,
        "last_block": last_block,
        "events": EVENT_BLOCKS * EVENTS_PER_BLOCK,
    }
    meta_file.write_text(json.dumps(meta))
    log(f"generated in {time.monotonic() - started:.0f} s")
    return Dataset(state_file=state_file, **meta)


def start_chain(dataset: Dataset) -> Anvil:
    """An anvil serving the cached chain (instamine, so later blocks cost nothing)."""
    return Anvil(
        block_time=None, extra_args=[*ANVIL_ARGS, "--load-state", str(dataset.state_file)]
    ).start(timeout=300)
