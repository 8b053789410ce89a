"""The static indexes behind a torch-free ``--help`` / ``list`` match what they describe exactly."""

import json

from chanlab import cli_index


def test_experiment_index_matches_the_registry():
    stored = cli_index.experiment_index()
    built = cli_index.build_experiment_index(stored)
    assert stored == built, "experiments/index.json is stale: run 'python -m chanlab.cli_index'"
    for name, entry in stored.items():
        t = entry["quick_time_s"]
        assert t is None or (isinstance(t, (int, float)) and t > 0), name


def test_source_index_matches_the_sources():
    assert cli_index.source_index() == cli_index.build_source_index(), \
        "channels/sources_index.json is stale: run 'python -m chanlab.cli_index'"


def test_index_files_are_as_generated():
    assert cli_index.main(["--check"]) == 0


def test_data_generate_flags_come_from_the_real_parameters():
    from chanlab.channels.sources import SOURCES
    from chanlab.cli import build_parser

    def subcommands(parser):
        return parser._subparsers._group_actions[0].choices   # argparse keeps them here

    gen = subcommands(subcommands(subcommands(build_parser())["data"])["generate"])
    assert list(gen) == list(SOURCES)
    for name, source in SOURCES.items():
        actions = {a.dest: a for a in gen[name]._actions}
        for p in source.params:
            a = actions[p.name]
            assert a.type is p.type and a.choices == (None if p.choices is None else list(p.choices)), (name, p.name)


def test_format_seconds():
    assert [cli_index.format_seconds(s) for s in (None, 40, 720, 5400)] == ["?", "40 s", "12 min", "1.5 h"]


def test_list_prints_claims_and_quick_time(capsys, monkeypatch, tmp_path):
    from chanlab.cli import main

    index = json.loads(cli_index.EXPERIMENT_INDEX.read_text())
    index["experiments"]["channels/demo"]["quick_time_s"] = 150
    index["experiments"]["gridization/synthetic"]["quick_time_s"] = None
    path = tmp_path / "index.json"
    path.write_text(json.dumps(index))
    monkeypatch.setattr(cli_index, "EXPERIMENT_INDEX", path)
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    demo = next(line for line in lines if line.startswith("channels/demo "))
    assert demo.split()[1:3] == [str(index["experiments"]["channels/demo"]["claims"]), "2"]
    grid = next(line for line in lines if line.startswith("gridization/synthetic "))
    assert grid.split()[2] == "?"
