"""``cvbench run --config row.toml`` and ``--print-config``: one run's options in the grid-row schema."""

from __future__ import annotations

import tomllib

from conftest import cli


def _printed(*args: str) -> dict:
    result = cli("run", "--preset", "smoke", *args, "--print-config")
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def test_print_config_read_back_with_config_gives_the_same_resolved_spec(tmp_path):
    first = cli("run", "--preset", "smoke", "--head", "gem", "--head-option", "p=3", "--loss", "soft_triplet",
                "--loss", "uniformity:0.01", "--pretrain-milestones", "2,3", "--seed", "7", "--print-config")
    assert first.returncode == 0, first.stderr
    config = tmp_path / "row.toml"
    config.write_text(first.stdout, encoding="utf-8")
    again = cli("run", "--config", str(config), "--print-config")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    values = tomllib.loads(first.stdout)
    assert values["head_options"] == {"p": 3.0} and values["loss"] == ["soft_triplet", "uniformity:0.01"]
    assert (values["seed"], values["pretrain_milestones"], values["preset"]) == (7, [2, 3], "smoke")


def test_flags_given_on_the_command_line_override_the_config_file(tmp_path):
    config = tmp_path / "row.toml"
    config.write_text('preset = "smoke"\nhead = "gem"\nseed = 3\nepochs = 2\n'
                      "head_options = { p = 2.0, learn_p = false }\n", encoding="utf-8")
    values = _printed("--config", str(config), "--seed", "0", "--head-option", "p=5")
    assert (values["seed"], values["epochs"], values["head"]) == (0, 2, "gem")  # --seed 0 is the default, but given
    assert values["head_options"] == {"p": 5.0, "learn_p": False}


def test_a_config_with_an_unknown_key_names_the_file_and_the_key(tmp_path):
    config = tmp_path / "row.toml"
    config.write_text('preset = "smoke"\nhed = "gem"\n', encoding="utf-8")
    result = cli("run", "--config", str(config), "--print-config")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())
    assert f"{config} has unknown key 'hed'; did you mean 'head'?" in text.replace(" ", " "), text


def test_a_config_value_of_the_wrong_type_names_the_file_and_the_option(tmp_path):
    config = tmp_path / "row.toml"
    config.write_text('epochs = "many"\n', encoding="utf-8")
    result = cli("run", "--config", str(config), "--print-config")
    assert result.returncode == 2
    assert f"{config}: option epochs = 'many': expected a whole number" in " ".join(result.stderr.split())


def test_resume_refuses_a_config_file_as_it_refuses_other_options(tmp_path):
    config = tmp_path / "row.toml"
    config.write_text("epochs = 2\n", encoding="utf-8")
    result = cli("run", "--resume", str(tmp_path), "--config", str(config))
    assert result.returncode == 2 and "drop --config" in result.stderr, result.stderr


def test_a_config_value_no_run_accepts_names_the_file(tmp_path):
    config = tmp_path / "row.toml"
    config.write_text('preset = ""\n', encoding="utf-8")
    result = cli("run", "--config", str(config), "--print-config")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {config} (with the flags given): unknown preset ''"), result.stderr
