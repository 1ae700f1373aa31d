from __future__ import annotations

from paddlehot_cli.core.handles import VersionRef


def test_release_after_last_handle():
    released = []
    ref = VersionRef("m", "1.0.0", object(), released.append)
    h1, h2 = ref.acquire(), ref.acquire()
    ref.retire()
    assert not released and ref.acquire() is not None  # still alive while handles exist
    h1.release()
    h1.release()  # idempotent
    assert not released
    h2.release()
    ref._drop()  # the third handle
    assert released == [ref] and ref.released
    assert ref.acquire() is None


def test_retire_without_handles_releases_now():
    released = []
    ref = VersionRef("m", "1.0.0", object(), released.append)
    with ref.acquire():
        pass
    ref.retire()
    ref.retire()
    assert released == [ref]
