"""rbsf.data.qt_resources against files written by Qt's own rcc (tests/fixtures/qt_resources)."""
from pathlib import Path

import pytest

from rbsf.data import qt_resources

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "qt_resources"
ORIGINALS = sorted(p.relative_to(FIXTURES).as_posix() for p in (FIXTURES / "src").rglob("*")
                   if p.is_file())


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_entry_comes_back_byte_for_byte_in_every_format(version):
    got = dict(qt_resources.entries(FIXTURES / f"zoo-v{version}.rcc"))
    assert sorted(got) == [f"/gcompris/{name}" for name in ORIGINALS]
    for name in ORIGINALS:
        assert got[f"/gcompris/{name}"] == (FIXTURES / name).read_bytes(), name


def test_a_zstd_compressed_entry_is_refused_with_its_name():
    with pytest.raises(qt_resources.QtResourceError, match="Zoo.qml is zstd-compressed"):
        list(qt_resources.entries(FIXTURES / "zoo-zstd.rcc"))


def test_a_truncated_file_fails_or_gives_the_whole_entries(tmp_path):
    """Cut anywhere, the reader raises or (past the last field it reads) returns the entries
    unchanged; it never returns a short or wrong file."""
    whole = (FIXTURES / "zoo-v2.rcc").read_bytes()
    expected = dict(qt_resources.entries(FIXTURES / "zoo-v2.rcc"))
    cut = tmp_path / "cut.rcc"
    refused = 0
    for length in range(len(whole)):
        cut.write_bytes(whole[:length])
        try:
            got = dict(qt_resources.entries(cut))
        except qt_resources.QtResourceError as error:
            assert str(error).startswith(f"{cut}: ")
            refused += 1
            continue
        assert got == expected, length
    assert refused > len(whole) - 16


def test_a_folder_pointing_back_to_itself_is_refused(tmp_path):
    blob = bytearray((FIXTURES / "zoo-v3.rcc").read_bytes())
    tree = int.from_bytes(blob[8:12], "big")
    blob[tree + 10:tree + 14] = (0).to_bytes(4, "big")    # the root's first child: the root
    bad = tmp_path / "loop.rcc"
    bad.write_bytes(bytes(blob))
    with pytest.raises(qt_resources.QtResourceError, match="points back to node 0"):
        list(qt_resources.entries(bad))


def test_corrupt_compressed_data_is_refused(tmp_path):
    blob = bytearray((FIXTURES / "zoo-v3.rcc").read_bytes())
    data = int.from_bytes(blob[12:16], "big")
    blob[data + 10:data + 14] = b"\xff\xff\xff\xff"        # inside the first entry's zlib stream
    bad = tmp_path / "corrupt.rcc"
    bad.write_bytes(bytes(blob))
    with pytest.raises(qt_resources.QtResourceError, match="corrupt|inflates to"):
        list(qt_resources.entries(bad))


@pytest.mark.parametrize("blob, why", [(b"PK\x03\x04" + bytes(40), "no 'qres' header"),
                                       (b"qres" + (9).to_bytes(4, "big") + bytes(16),
                                        "format version 9")])
def test_a_file_that_is_not_a_resource_file_is_refused(tmp_path, blob, why):
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(blob)
    with pytest.raises(qt_resources.QtResourceError, match=why):
        list(qt_resources.entries(bad))
