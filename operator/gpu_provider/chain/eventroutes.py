"""Which logs the event stream wants, and how it turns them into `ChainEvent`s.

Also the test a header's `logsBloom` allows: whether a block may hold a wanted log, which is
how the stream notices an `eth_getLogs` answer that left logs out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from gpu_provider.chain.decoding import EventDecoder, LogDecodeError, event_decoders
from gpu_provider.chain.errors import RpcError
from gpu_provider.chain.jsonrpc import RawLog
from gpu_provider.chain.records import ChainEvent, EventSource, Predicate

log = logging.getLogger(__name__)

Pair = tuple[str, str]
"""A contract address and an event topic, lower-cased."""


class ChainMoved(Exception):
    """Two reads disagree about a block: the chain changed in between. Read again later."""


def bloom_mask(item: bytes) -> int:
    """The three bits an item sets in a 2048-bit log bloom (yellow paper, M3:2048)."""
    digest = keccak(item)
    mask = 0
    for i in (0, 2, 4):
        mask |= 1 << (int.from_bytes(digest[i : i + 2], "big") & 2047)
    return mask


@dataclass(frozen=True)
class _Route:
    decoder: EventDecoder
    keep: Predicate | None


class Routes:
    """The stream's filter: (address, topic0) pairs, each with its decoder and predicate."""

    def __init__(self, sources: Sequence[EventSource]) -> None:
        if not sources:
            raise ValueError("EventStream needs at least one EventSource")
        self._routes: dict[Pair, _Route] = {}
        for source in sources:
            decoders = event_decoders(source.abi, source.events)
            unknown = set(source.where) - {d.name for d in decoders.values()}
            if unknown:
                raise ValueError(f"filters for events not streamed: {', '.join(sorted(unknown))}")
            for topic, decoder in decoders.items():
                route = _Route(decoder, source.where.get(decoder.name))
                self._routes[(source.address.lower(), topic.lower())] = route
        self.addresses = sorted({address for address, _ in self._routes})
        self.topics = sorted({topic for _, topic in self._routes})
        self._masks = {
            pair: bloom_mask(bytes.fromhex(pair[0][2:])) | bloom_mask(bytes.fromhex(pair[1][2:]))
            for pair in self._routes
        }

    def query(self, start: int, end: int) -> dict[str, Any]:
        return {
            "address": self.addresses,
            "topics": [self.topics],
            "fromBlock": hex(start),
            "toBlock": hex(end),
        }

    def in_bloom(self, bloom_hex: str) -> set[Pair]:
        """Pairs the bloom may hold (false positives possible, false negatives not)."""
        try:
            bloom = int(bloom_hex, 16)
        except ValueError:
            return set(self._masks)  # unreadable: assume anything may be there
        return {pair for pair, mask in self._masks.items() if bloom & mask == mask}

    @staticmethod
    def pairs_by_block(logs: Sequence[RawLog]) -> dict[int, set[Pair]]:
        """The (address, topic0) pairs present in an answer, per block number."""
        out: dict[int, set[Pair]] = {}
        for raw in logs:
            try:
                topics = raw["topics"]
                if topics:
                    pair = (raw["address"].lower(), topics[0].lower())
                    out.setdefault(int(raw["blockNumber"], 16), set()).add(pair)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                raise RpcError("eth_getLogs", 0, f"malformed log in the reply: {exc!r}") from exc
        return out

    def decode(self, logs: Sequence[RawLog], hashes: Mapping[int, str]) -> list[ChainEvent]:
        """Decode and filter logs, in chain order.

        Raises `ChainMoved` for a log whose block hash differs from `hashes`.
        """
        out: list[ChainEvent] = []
        routes = self._routes
        numbers: dict[str, int] = {}
        for raw in logs:
            try:
                topics = raw["topics"]
                route = routes.get((raw["address"].lower(), topics[0].lower())) if topics else None
                if route is None or raw.get("removed"):
                    continue
                number_hex = raw["blockNumber"]
                number = numbers.get(number_hex)
                if number is None:
                    number = numbers[number_hex] = int(number_hex, 16)
                block_hash = raw["blockHash"].lower()
                expected = hashes.get(number)
                if expected is not None and expected != block_hash:
                    raise ChainMoved
                args = route.decoder.decode(topics, raw["data"])
                event = ChainEvent(
                    route.decoder.name,
                    args,
                    raw["address"],
                    number,
                    block_hash,
                    raw["transactionHash"].lower(),
                    int(raw["transactionIndex"], 16),
                    int(raw["logIndex"], 16),
                )
            except LogDecodeError as exc:
                log.warning(
                    "skipping a malformed log in tx %s: %s", raw.get("transactionHash"), exc
                )
                continue
            except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
                raise RpcError("eth_getLogs", 0, f"malformed log in the reply: {exc!r}") from exc
            if route.keep is None or route.keep(event):
                out.append(event)
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out
