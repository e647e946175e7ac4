"""docs/examples/advertise_provider.py runs as docs/advertising.md says: it registers the
devnet provider with the offer given, and a second identical run sends nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from e2e.chain.conftest import Market
from gpu_provider.devnet.session import DevnetChain

REPO = Path(__file__).resolve().parents[2]


async def run_example(state_file: Path, journal: Path, *argv: str) -> str:
    command = [
        sys.executable,
        "docs/examples/advertise_provider.py",
        "--state-file",
        str(state_file),
        "--journal",
        str(journal),
        *argv,
    ]
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_the_example_advertises_the_offer_once(
    market: Market, devnet: DevnetChain, tmp_path: Path
) -> None:
    state_file, journal = tmp_path / "devnet.json", tmp_path / "journal.json"
    state_file.write_text(devnet.state.to_json())
    first = await run_example(state_file, journal, "--gpu", "51=8", "--cpu", "1=64")
    assert "sent: register provider" in first
    assert "status ACTIVE" in first
    assert "GPU: approved [], pending [(51, 8)]" in first
    nonce = market.w3.eth.get_transaction_count(market.people.provider.address)

    again = await run_example(state_file, journal, "--gpu", "51=8", "--cpu", "1=64")
    assert "sent:" not in again
    assert "in sync" in again
    assert market.w3.eth.get_transaction_count(market.people.provider.address) == nonce
