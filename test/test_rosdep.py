"""Every ``*depend`` key of package.xml resolves with rosdep on Humble, Jazzy and Kilted.

Checked offline against the rosdistro snapshot in ``../shared/ros2/rosdistro`` (``base.yaml`` and
``python.yaml`` rosdep rules, ``<distro>-distribution.yaml`` release files): a ROS package key must
be released in the distribution, a system key must have a rule for each Ubuntu release the
distribution targets. Then the real ``rosdep install --from-paths src --ignore-src -y`` (the README's
command, with ``--simulate``) runs in a workspace holding this checkout, against the same snapshot
through a private sources list and index.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROS2_SHARED = os.environ.get("FT_ROS2_SHARED", os.path.join(os.path.dirname(ROOT), "shared", "ros2"))
ROSDISTRO = os.path.join(ROS2_SHARED, "rosdistro")
DISTROS = ("humble", "jazzy", "kilted")
DEPEND_TAGS = ("depend", "build_depend", "buildtool_depend", "build_export_depend", "buildtool_export_depend",
               "exec_depend", "test_depend", "doc_depend")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _snapshot() -> str:
    if not os.path.isfile(os.path.join(ROSDISTRO, "base.yaml")):
        pytest.skip(f"rosdistro snapshot not available: {ROSDISTRO} (set FT_ROS2_SHARED)")
    return ROSDISTRO


@functools.lru_cache(maxsize=None)
def _load(name: str) -> dict:
    with open(os.path.join(_snapshot(), name)) as f:
        return yaml.load(f, Loader=_LOADER)


def package_keys(path: str) -> list:
    """``[(tag, key)]`` of every dependency element of a package.xml (format 2/3)."""
    root = ET.parse(path).getroot()
    return [(el.tag, el.text.strip()) for el in root if el.tag in DEPEND_TAGS and el.text and el.text.strip()]


def released_packages(distro: str) -> set:
    """Names of the ROS packages released in ``distro`` (its distribution file)."""
    out = set()
    for repo_name, repo in _load(f"{distro}-distribution.yaml")["repositories"].items():
        release = repo.get("release")
        if release and release.get("version"):
            out.update(release.get("packages", [repo_name]))
    return out


def ubuntu_codenames(distro: str) -> list:
    return list(_load(f"{distro}-distribution.yaml")["release_platforms"]["ubuntu"])


def system_rule(key: str, codename: str):
    """The Ubuntu ``codename`` packages rosdep would install for system ``key``, or None if none."""
    for rules in ("base.yaml", "python.yaml"):
        doc = _load(rules)
        if key not in doc:
            continue
        rule = doc[key].get("ubuntu") if isinstance(doc[key], dict) else None
        if isinstance(rule, dict) and not set(rule) & {"apt", "pip", "source"}:
            rule = rule.get(codename, rule.get("*"))  # per-release rules, '*' = any release
        if isinstance(rule, dict):  # installer-keyed: {apt: {packages: [...]}} / {pip: ...}
            inner = next(iter(rule.values()))
            rule = inner.get("packages") if isinstance(inner, dict) else inner
        return rule or None
    return None


def unresolved(path: str, distro: str) -> list:
    """Keys of ``path`` rosdep cannot resolve on ``distro`` (on any of its Ubuntu releases)."""
    ros = released_packages(distro)
    bad = []
    for tag, key in package_keys(path):
        if key in ros:
            continue
        missing = [c for c in ubuntu_codenames(distro) if system_rule(key, c) is None]
        if missing:
            bad.append(f"<{tag}>{key}</{tag}> (no rule for ubuntu {', '.join(missing)})")
    return bad


@pytest.mark.parametrize("distro", DISTROS)
def test_every_key_resolves_offline(distro):
    bad = unresolved(os.path.join(ROOT, "package.xml"), distro)
    assert not bad, f"package.xml keys rosdep cannot resolve on {distro}: {bad}"


def test_checker_catches_a_bad_key(tmp_path):
    """The check above is not vacuous: a key with no rule (the old python3-dlib) and an unreleased
    package fail, a released package and a system key pass."""
    (tmp_path / "package.xml").write_text(
        '<?xml version="1.0"?>\n<package format="3"><name>x</name><version>0.0.0</version>'
        "<description>x</description><maintainer email='a@b.c'>a</maintainer><license>MIT</license>"
        "<exec_depend>python3-dlib</exec_depend><exec_depend>no_such_ros_pkg</exec_depend>"
        "<exec_depend>rclpy</exec_depend><test_depend>python3-pytest</test_depend></package>\n")
    bad = unresolved(str(tmp_path / "package.xml"), "jazzy")
    assert [b.split("</")[0] for b in bad] == ["<exec_depend>python3-dlib", "<exec_depend>no_such_ros_pkg"]


def _rosdep_env(tmp_path) -> dict:
    """Environment pointing rosdep at the snapshot: a sources.list.d with file:// rules, a
    rosdistro index listing the three distribution files, a private cache (ROS_HOME)."""
    snap = _snapshot()
    index = {"type": "index", "version": 4, "distributions": {
        d: {"distribution": [f"file://{snap}/{d}-distribution.yaml"], "distribution_status": "active",
            "distribution_type": "ros2", "python_version": 3} for d in DISTROS}}
    (tmp_path / "index.yaml").write_text(yaml.safe_dump(index))
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "20-default.list").write_text(f"yaml file://{snap}/base.yaml\nyaml file://{snap}/python.yaml\n")
    env = dict(os.environ, ROSDEP_SOURCE_PATH=str(sources), ROS_HOME=str(tmp_path / "ros_home"),
               ROSDISTRO_INDEX_URL=f"file://{tmp_path / 'index.yaml'}")
    env.pop("ROS_DISTRO", None)
    return env


def test_rosdep_install_simulate_resolves_every_key(tmp_path):
    _snapshot()
    rosdep = shutil.which("rosdep") or pytest.skip("rosdep not installed (requirements/lock.txt has it)")
    env = _rosdep_env(tmp_path)
    res = subprocess.run([rosdep, "update"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "face_tracker").symlink_to(ROOT)  # the README's layout: ~/ws/src/face_tracker
    for distro in DISTROS:
        # The README's command, simulated; rosdep detects the OS it runs on, a robot runs the
        # distro's Ubuntu release.
        codename = ubuntu_codenames(distro)[0]
        cmd = [rosdep, "install", "--from-paths", "src", "--ignore-src", "-y", "--simulate", "--rosdistro", distro,
               "--os", f"ubuntu:{codename}"]
        res = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, timeout=300)
        out = res.stdout + res.stderr
        assert res.returncode == 0 and "Cannot locate" not in out, f"{' '.join(cmd)}:\n{out}"
        # every ROS package key resolved to this distro's Debian package (or is already installed)
        assert f"ros-{distro}-" in out or "All required rosdeps installed" in out, out


def test_readme_shows_the_tested_rosdep_command():
    text = open(os.path.join(ROOT, "README.md")).read()
    assert "rosdep install --from-paths src --ignore-src -y" in text
