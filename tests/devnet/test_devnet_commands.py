"""`gpu-provider devnet ...` without a chain: help that teaches, errors that say what to run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gpu_provider.cli import main

EXAMPLES = Path(__file__).parents[2] / "manifests/examples"

COMMANDS = [
    ["devnet", "up"],
    ["devnet", "down"],
    ["devnet", "matchmaker"],
    ["devnet", "tenant"],
    ["devnet", "tenant", "balance"],
    ["devnet", "tenant", "deposit"],
    ["devnet", "tenant", "order"],
    ["devnet", "tenant", "cancel"],
    ["devnet", "tenant", "wait-lease"],
    ["devnet", "tenant", "lease"],
    ["devnet", "tenant", "send-manifest"],
    ["devnet", "tenant", "close"],
    ["devnet", "provider"],
    ["devnet", "provider", "set-tier"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_every_devnet_command_teaches_with_an_example(argv: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(main, [*argv, flag])
        assert result.exit_code == 0, result.output
        body = result.output.split("\n\n", 2)[1]
        assert len(body.split()) >= 6, body
        assert "gpu-provider devnet " in result.output.split("Options:")[0]


def test_the_devnet_group_lists_its_commands() -> None:
    result = CliRunner().invoke(main, ["devnet", "--help"])
    for command in ("up", "down", "matchmaker", "tenant", "provider"):
        assert f"  {command} " in result.output


@pytest.mark.parametrize(
    "argv",
    [
        ["matchmaker", "--once"],
        ["tenant", "balance"],
        ["tenant", "deposit", "--amount", "10"],
        ["tenant", "lease", "1"],
        ["tenant", "close", "1"],
        ["tenant", "wait-lease", "1"],
        ["tenant", "order", str(EXAMPLES / "order.yaml")],
        ["tenant", "send-manifest", "1", str(EXAMPLES / "manifest.yaml")],
        ["provider", "set-tier", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "4"],
    ],
    ids=" ".join,
)
def test_without_a_devnet_every_command_says_to_start_one(argv: list[str], tmp_path: Path) -> None:
    state_file = tmp_path / "devnet.json"
    result = CliRunner().invoke(main, ["devnet", *argv, "--state-file", str(state_file)])
    assert result.exit_code == 1
    assert f"no devnet at {state_file}: run `gpu-provider devnet up` first" in result.output
    assert "Traceback" not in result.output


def test_a_bad_order_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    order = tmp_path / "order.yaml"
    order.write_text("name: x\nduration: 1h\nmaxUsdPerHour: 1\nservices: [{name: a, cpu: 1}]\n")
    result = CliRunner().invoke(main, ["devnet", "tenant", "order", str(order)])
    assert result.exit_code == 1
    assert f"Error: {order}: services.0.memory: Field required" in result.output


@pytest.mark.parametrize("amount", ["-1", "0", "lots", "NaN"])
def test_a_deposit_must_be_a_positive_amount(amount: str) -> None:
    result = CliRunner().invoke(main, ["devnet", "tenant", "deposit", "--amount", amount])
    assert result.exit_code == 2
    assert "--amount" in result.output


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["devnet", "down", "--state-file", str(tmp_path / "d.json")])
    assert result.exit_code == 0
    assert "no devnet was running" in result.output


def test_the_eager_matchmaker_says_why_waiting_for_the_window_is_the_default() -> None:
    result = CliRunner().invoke(main, ["devnet", "matchmaker", "--help"])
    help_text = " ".join(result.output.split())
    assert "OrderMatched only after createOrder's receipt (4-8 s later)" in help_text
    assert "missed" in help_text


def test_up_starts_new_providers_in_a_configurable_tier() -> None:
    result = CliRunner().invoke(main, ["devnet", "up", "--help"])
    help_text = " ".join(result.output.split())
    assert "--provider-tier" in help_text
    assert "[default: 4; 1<=x<=7]" in help_text
    refused = CliRunner().invoke(main, ["devnet", "up", "--provider-tier", "8"])
    assert refused.exit_code == 2


@pytest.mark.parametrize("tier", ["0", "8", "gold"])
def test_set_tier_takes_a_tier_from_1_to_7(tier: str) -> None:
    result = CliRunner().invoke(
        main, ["devnet", "provider", "set-tier", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", tier]
    )
    assert result.exit_code == 2
    assert "TIER" in result.output


def test_send_manifest_reads_the_provider_from_the_chain_and_puts() -> None:
    result = CliRunner().invoke(main, ["devnet", "tenant", "send-manifest", "--help"])
    help_text = " ".join(result.output.split())
    assert "https://<hostUri>:8443/deployment/<leaseId>/manifest" in help_text
    assert "PUTs" in help_text
    assert "--provider-url" not in help_text
