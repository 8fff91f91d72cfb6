"""Checkpoints written by the version before: their identities (a hash of the first MiB)
become today's (of the file's ends) when the file is still the one they named."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from tests.helpers import send_row, write_sends_csv
from trackly_migrate.checkpoint import (
    CHANGED_SINCE,
    LEGACY_HEAD_BYTES,
    Checkpoint,
    InputIdentity,
)
from trackly_migrate.pipeline.batch_state import STATE_VERSION, load_state
from trackly_migrate.pipeline.ledger import Fingerprint


def version_1_identity(source: Path) -> dict[str, Any]:
    info = source.stat()
    head = hashlib.sha256(source.read_bytes()[:LEGACY_HEAD_BYTES]).hexdigest()
    return {
        "path": str(source.resolve()),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "head_sha256": head,
    }


def test_a_version_1_identity_of_an_unchanged_file_is_todays(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(30)])
    assert InputIdentity.from_dict(version_1_identity(source)) == InputIdentity.of(str(source))


def test_a_version_1_identity_of_a_changed_or_missing_file_matches_no_file(
    tmp_path: Path,
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(30)])
    named = version_1_identity(source)
    before = source.stat()
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 1  # the same size, the same time: only the hash tells
    source.write_bytes(bytes(data))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    changed = InputIdentity.from_dict(named)
    assert changed.ends_sha256 == CHANGED_SINCE
    assert changed != InputIdentity.of(str(source))

    source.unlink()
    assert InputIdentity.from_dict(named).ends_sha256 == CHANGED_SINCE


def test_a_version_1_list_checkpoint_is_read_with_todays_identities(tmp_path: Path) -> None:
    finished = write_sends_csv(tmp_path / "a.csv", [send_row(1)])
    under_way = write_sends_csv(tmp_path / "b.csv", [send_row(2), send_row(3)])
    current = Checkpoint.new("import-sends", InputIdentity.of(str(under_way)), {})
    current_raw = orjson.loads(current.to_bytes())
    current_raw.update(version=1, identity=version_1_identity(under_way), offset=40, line=2)
    document = {
        "command": "import-sends",
        "files": [str(finished.resolve()), str(under_way.resolve())],
        "finished": {
            str(finished.resolve()): {"identity": version_1_identity(finished), "totals": {}}
        },
        "version": 1,
        "current": {str(under_way.resolve()): current_raw},
    }
    path = tmp_path / "list.json"
    path.write_bytes(orjson.dumps(document))
    state = load_state(path)
    assert state is not None and state.version == STATE_VERSION
    entry = state.finished_entry(str(finished))
    assert entry is not None and entry.identity == InputIdentity.of(str(finished))
    resumed = state.under_way(str(under_way))
    assert resumed is not None and resumed.identity == InputIdentity.of(str(under_way))
    assert (resumed.offset, resumed.line) == (40, 2)
    state.save(path)  # written again as today's version
    assert orjson.loads(path.read_bytes())["version"] == STATE_VERSION


def test_the_ledgers_fingerprint_is_the_identity_without_its_path(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3000)])
    identity = InputIdentity.of(str(source))
    assert Fingerprint.of(str(source)) == Fingerprint(
        identity.size, identity.mtime_ns, identity.ends_sha256
    )


def test_the_list_s_checkpoint_is_where_the_version_before_put_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Its place is keyed by the files' absolute paths, now resolved once by expand(): the
    # key must be the one the version before made (pathlib's resolve() of each name), or a
    # --resume after an upgrade would not find the run it continues. Relative names, a
    # folder reached through a symlink and a ".." are resolved the same way.
    from trackly_migrate.pipeline.batch_state import default_state_path
    from trackly_migrate.pipeline.inputs import Inputs, expand

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        write_sends_csv(real / name, [send_row(1)])
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    names = ["link/a.csv", "real/sub/../b.csv"]
    files = expand(Inputs(tuple(names)))
    listed = "\n".join(str(Path(name).resolve()) for name in names)
    key = hashlib.sha256(listed.encode()).hexdigest()[:16]
    assert default_state_path("import-sends", list(files.values())).name == (
        f"import-sends-files-{key}.json"
    )
