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
    for command in ("up", "down", "matchmaker", "tenant"):
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
