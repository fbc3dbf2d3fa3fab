"""Helpers shared by the tool tests."""


def assert_clear_error(proc, *phrases: str) -> None:
    """The bad-input contract of every tool: exit code 2, no traceback, and a last stderr line
    ``error: ...`` that names each of ``phrases``."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    for phrase in phrases:
        assert phrase in line, line


def run_in_process(main, args, capsys):
    """A tool's ``main`` through ``run_tool`` in this process (no interpreter start-up): its
    exit code and outputs, as a subprocess would report them."""
    from types import SimpleNamespace

    from tools.cli import run_tool

    code = run_tool(main, [str(a) for a in args])
    out, err = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)
