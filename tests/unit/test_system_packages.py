"""tools/install-system-packages.sh: `make test` installs the system packages
the tests use and checks the files they need, not only a command.

A new machine once failed `make test` because clang was there without
libclang-rt-14-dev (libFuzzer's and ASan's runtimes), and the install script
skipped everything when the `clang` command existed.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "install-system-packages.sh"
MISSING = re.compile(r"^  (\S+): (\S+)$", re.M)


def check(*groups: str, system_root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if system_root is not None:
        env["SYSTEM_ROOT"] = str(system_root)
    return subprocess.run([str(SCRIPT), "--check", *groups], capture_output=True, text=True,
                          timeout=120, env=env)


def test_every_package_the_tests_need_is_in_place() -> None:
    result = check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_runtime_is_named_with_its_package_although_clang_is_there(tmp_path: Path) -> None:
    # Every checked file of the native group, as a fake tree, but for libclang-rt-14-dev's.
    wanted = MISSING.findall(check("native", system_root=tmp_path).stderr)
    fuzzer = f"/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-{os.uname().machine}.a"
    assert ("libclang-rt-14-dev", fuzzer) in wanted
    for package, pattern in wanted:
        if package == "libclang-rt-14-dev":
            continue
        (path,) = glob.glob(pattern)[:1] or [pattern.replace("*", "any")]
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).touch()
    assert (tmp_path / "usr" / "bin" / "clang").exists()

    result = check("native", system_root=tmp_path)
    assert result.returncode == 1
    assert {package for package, _ in MISSING.findall(result.stderr)} == {"libclang-rt-14-dev"}
    assert "run tools/install-system-packages.sh to install them" in result.stderr


def test_make_test_installs_the_packages_first_and_native_tests_never_skip_clang() -> None:
    dry_run = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert dry_run.index("tools/install-system-packages.sh") < dry_run.index("pytest")
    installer = next(line for line in dry_run.splitlines() if "install-fuzz-deps.sh" in line)
    assert "||" not in installer, "a failed install must stop `make test`"
    delegate = (ROOT / "server/native/libshardq/scripts/install-fuzz-deps.sh").read_text()
    assert "tools/install-system-packages.sh" in delegate and "native" in delegate


def test_unknown_group_is_refused() -> None:
    result = check("natve")
    assert result.returncode == 1
    assert "unknown argument 'natve'" in result.stderr
