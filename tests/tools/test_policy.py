from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrion.exceptions import InputRefusedError
from orchestrion.tools.policy import WorkspacePolicy


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    (workspace / "pkg").mkdir(parents=True)
    (workspace / "pkg" / "app.py").write_text("print('hi')\n")
    (workspace / "README.md").write_text("# readme\n")
    return workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("top secret\n")
    return secret


def test_resolve_accepts_absolute_and_relative_paths_inside_a_root(root: Path) -> None:
    policy = WorkspacePolicy(roots=(root,))

    assert policy.resolve(str(root / "pkg" / "app.py")) == (root / "pkg" / "app.py").resolve()
    assert policy.resolve("pkg/app.py") == (root / "pkg" / "app.py").resolve()


def test_resolve_refuses_dotdot_escape(root: Path, outside: Path) -> None:
    policy = WorkspacePolicy(roots=(root,))

    with pytest.raises(InputRefusedError) as info:
        policy.resolve(str(root / ".." / "outside" / "secret.txt"))

    assert info.value.field == "inputs.paths"
    assert "outside the configured workspace roots (1 configured)" in info.value.message


def test_resolve_refuses_relative_dotdot_escape(root: Path, outside: Path) -> None:
    with pytest.raises(InputRefusedError, match="outside the configured workspace roots"):
        WorkspacePolicy(roots=(root,)).resolve("../outside/secret.txt")


def test_resolve_refuses_symlink_pointing_outside(root: Path, outside: Path) -> None:
    (root / "link.txt").symlink_to(outside)

    with pytest.raises(InputRefusedError, match="outside the configured workspace roots"):
        WorkspacePolicy(roots=(root,)).resolve(str(root / "link.txt"))


def test_resolve_refuses_absolute_path_outside_without_leaking_anything_else(root: Path) -> None:
    with pytest.raises(InputRefusedError) as info:
        WorkspacePolicy(roots=(root,)).resolve("/etc/passwd")

    assert info.value.message == "path '/etc/passwd' is outside the configured workspace roots (1 configured)"
    assert str(root) not in str(info.value.details)


def test_resolve_gives_the_same_answer_for_missing_and_existing_paths_outside(root: Path) -> None:
    policy = WorkspacePolicy(roots=(root,))

    with pytest.raises(InputRefusedError, match="outside") as missing:
        policy.resolve("/definitely/not/here")
    with pytest.raises(InputRefusedError, match="outside"):
        policy.resolve("/etc/hostname")

    assert "exist" not in missing.value.message


def test_resolve_refuses_when_no_roots_are_configured(root: Path) -> None:
    with pytest.raises(InputRefusedError, match="ORCHESTRION_WORKSPACE_ROOTS is not set"):
        WorkspacePolicy().resolve(str(root / "README.md"))


def test_resolve_refuses_nonexistent_path_inside_root(root: Path) -> None:
    with pytest.raises(InputRefusedError, match="does not exist"):
        WorkspacePolicy(roots=(root,)).resolve("pkg/missing.py")


def test_read_files_walks_directories_sorted_with_names_relative_to_root(root: Path) -> None:
    files = WorkspacePolicy(roots=(root,)).read_files([str(root)])

    assert [f.name for f in files] == ["README.md", "pkg/app.py"]
    assert files[1].content == "print('hi')\n"
    assert {f.source for f in files} == {"workspace"}


def test_read_files_skips_hidden_and_tool_directories(root: Path) -> None:
    for folder in (".git", "node_modules", "__pycache__", ".venv"):
        (root / folder).mkdir()
        (root / folder / "inside.txt").write_text("skip me")
    (root / ".env").write_text("KEY=value\n")

    names = [f.name for f in WorkspacePolicy(roots=(root,)).read_files([str(root)])]

    assert names == [".env", "README.md", "pkg/app.py"]


def test_read_files_skips_binary_and_oversized_files(root: Path) -> None:
    (root / "image.bin").write_bytes(b"\x89PNG\x00\x00data")
    (root / "big.txt").write_text("x" * 2000)

    names = [f.name for f in WorkspacePolicy(roots=(root,), max_file_bytes=1000).read_files([str(root)])]

    assert names == ["README.md", "pkg/app.py"]


def test_read_files_skips_symlinks_escaping_the_roots(root: Path, outside: Path) -> None:
    (root / "escape.txt").symlink_to(outside)
    (root / "inner.txt").symlink_to(root / "README.md")

    files = WorkspacePolicy(roots=(root,)).read_files([str(root)])

    assert [f.name for f in files] == ["README.md", "pkg/app.py"]
    assert all("top secret" not in f.content for f in files)


def test_read_files_refuses_more_files_than_max_files(root: Path) -> None:
    with pytest.raises(InputRefusedError, match="max_files=1") as info:
        WorkspacePolicy(roots=(root,), max_files=1).read_files([str(root)])

    assert info.value.details["limit"] == "max_files"


def test_read_files_refuses_more_bytes_than_max_total_bytes(root: Path) -> None:
    (root / "data.txt").write_text("y" * 100)

    with pytest.raises(InputRefusedError, match="max_total_bytes=50"):
        WorkspacePolicy(roots=(root,), max_total_bytes=50).read_files([str(root)])


def test_read_files_reads_each_file_once(root: Path) -> None:
    files = WorkspacePolicy(roots=(root,)).read_files([str(root / "pkg" / "app.py"), str(root)])

    assert [f.name for f in files] == ["pkg/app.py", "README.md"]


def test_read_files_names_files_relative_to_the_most_specific_root(root: Path) -> None:
    policy = WorkspacePolicy(roots=(root, root / "pkg"))

    assert [f.name for f in policy.read_files([str(root / "pkg")])] == ["app.py"]


async def test_aread_files_reads_in_a_thread(root: Path) -> None:
    files = await WorkspacePolicy(roots=(root,)).aread_files(["README.md"])

    assert [(f.name, f.content) for f in files] == [("README.md", "# readme\n")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without permission")
def test_read_files_skips_unreadable_directories(root: Path) -> None:
    locked = root / "locked"
    locked.mkdir()
    (locked / "a.txt").write_text("a")
    locked.chmod(0)
    try:
        names = [f.name for f in WorkspacePolicy(roots=(root,)).read_files([str(root)])]
    finally:
        locked.chmod(0o755)

    assert "locked/a.txt" not in names
