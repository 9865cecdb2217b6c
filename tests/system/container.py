"""A real systemd 252 as PID 1 of private namespaces, booted for a test and torn down by its id.

Follows /work/shared/systemd-in-a-namespace.md, in its order, and adds a private /dev:
- `mount --make-rprivate /` first, so no mount below propagates to the host;
- overlays (upper/work in this test's scratch folder) over /etc /var /srv /opt /usr, every tree
  that systemd or a package install writes;
- fresh tmpfs on /run, /mnt and /tmp (systemd-tmpfiles once emptied a host's /tmp), and a
  tmpfs /dev holding bind mounts of the pseudo devices only (systemd would otherwise create
  /dev/log and friends in the host's /dev);
- /sys and /proc/sys read-only; its own host name; `container=` set; units that reach for
  hardware or the network masked in the overlay's /etc before boot;
- then every mount made shared again, as systemd does on a real machine (not in a container),
  in new peer groups of this namespace only: credentials are mounted in a child namespace and
  must propagate back to PID 1's.
Teardown kills that PID 1 (the kernel then kills everything else in its PID namespace), waits,
and removes the cgroups it made in the host hierarchies; `leftovers()` proves nothing survived.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import wait_until

HOSTNAME = "hotfolder-systemd-test"
OVERLAID = ("etc", "var", "srv", "opt", "usr")
PRIVATE_TMPFS = ("run", "mnt", "tmp")
#: The cgroups systemd makes at its root (and everything below them).
SYSTEMD_CGROUPS = ("init.scope", "system.slice", "user.slice", "machine.slice")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
MASKED = (
    # hardware: no udev, no kernel settings, no consoles to log in on
    "systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket "
    "systemd-udev-trigger.service systemd-udev-settle.service systemd-sysctl.service "
    "systemd-modules-load.service systemd-random-seed.service systemd-binfmt.service "
    "getty.target getty@.service serial-getty@.service console-getty.service "
    "systemd-logind.service systemd-hwdb-update.service systemd-remount-fs.service "
    "systemd-firstboot.service systemd-machine-id-commit.service "
    # network and time: nothing may reach outside
    "ssh.service ssh.socket systemd-networkd.service systemd-resolved.service "
    "systemd-timesyncd.service networking.service cron.service "
    # timers: no apt, fstrim, e2scrub or man-db runs behind the test's back
    "timers.target apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer "
    "man-db.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer logrotate.timer"
).split()

BOOT = r"""
set -euo pipefail
scratch=$1
mount --make-rprivate /
for d in OVERLAID; do
  mkdir -p "$scratch/upper/$d" "$scratch/work/$d"
  mount -t overlay "hotfolder-test-$d" \
    -o "lowerdir=/$d,upperdir=$scratch/upper/$d,workdir=$scratch/work/$d" "/$d"
done
for d in PRIVATE_TMPFS; do
  mount -t tmpfs -o mode=0755,nosuid,nodev "hotfolder-test-$d" "/$d"
done
chmod 1777 /tmp
mkdir -p "$scratch/dev"
mount -t tmpfs -o mode=0755,nosuid hotfolder-test-dev "$scratch/dev"
for n in DEVICES; do
  touch "$scratch/dev/$n"
  mount --bind "/dev/$n" "$scratch/dev/$n"
done
mkdir -p "$scratch/dev/pts" "$scratch/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 hotfolder-test-devpts "$scratch/dev/pts"
ln -s pts/ptmx "$scratch/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev hotfolder-test-shm "$scratch/dev/shm"
mount --move "$scratch/dev" /dev
mount --rbind /sys /sys
mount -o remount,bind,ro /sys
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
for unit in MASKED; do
  ln -sfn /dev/null "/etc/systemd/system/$unit"
done
rm -f /etc/systemd/system/multi-user.target.wants/*  # the host's enabled services (databases...)
# A container image's "never start services" policy (exit 101) is not a workstation's: without
# this (in the overlay only), a package's postinst could never start its service.
rm -f /usr/sbin/policy-rc.d
hostname HOSTNAME
echo HOSTNAME > /etc/hostname  # systemd sets the host name from it at boot (in this UTS ns)
export container=HOSTNAME
# systemd makes / shared itself only outside a container; a service's credentials (LoadCredential=)
# are mounted in a child namespace and reach PID 1's only through a shared /run. The peer groups
# made here are this namespace's own (everything was made private first): nothing reaches the host.
mount --make-rshared /
exec /lib/systemd/systemd --system --unit=multi-user.target
"""


def _script() -> str:
    return (
        BOOT.replace("PRIVATE_TMPFS", " ".join(PRIVATE_TMPFS))
        .replace("OVERLAID", " ".join(OVERLAID))
        .replace("DEVICES", " ".join(DEVICES))
        .replace("MASKED", " ".join(MASKED))
        .replace("HOSTNAME", HOSTNAME)
    )


def _hierarchies() -> tuple[Path, ...]:
    """Each host cgroup hierarchy's mount point."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fstype = line.split(" - ")[1].split()[0]
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(line.split()[4]))
    return tuple(found)


def _systemd_cgroups() -> tuple[Path, ...]:
    """Where a systemd booted from here puts its cgroups in each host hierarchy: below the path
    it reads for itself in /proc/self/cgroup (the name=systemd or unified line), the same path in
    every hierarchy. Only these; other processes on the machine make cgroups of their own."""
    base = "/"
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers in ("name=systemd", ""):
            base = path
    return tuple(h / base.lstrip("/") / name for h in _hierarchies() for name in SYSTEMD_CGROUPS)


def _tree(roots: tuple[Path, ...]) -> set[Path]:
    return {Path(d) for root in roots if root.is_dir() for d, _, _ in os.walk(root)}


def _pid_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


@dataclass(frozen=True)
class Leftovers:
    processes: tuple[int, ...]
    mounts: tuple[str, ...]
    cgroups: tuple[Path, ...]


class Container:
    """One booted systemd; `run` executes a command inside all its namespaces."""

    def __init__(self, scratch_parent: Path) -> None:
        scratch_parent.mkdir(parents=True, exist_ok=True)
        self.scratch = Path(tempfile.mkdtemp(prefix="systemd-", dir=scratch_parent))
        self.cgroup_roots = _systemd_cgroups()
        if taken := _tree(self.cgroup_roots):
            raise AssertionError(f"cgroups a booted systemd would use exist already: {taken}")
        self.boot_log = self.scratch / "boot.log"
        with open(self.boot_log, "wb") as log:
            self.unshare = subprocess.Popen(
                [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount",
                    "--uts",
                    "--net",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "bash",
                    "-c",
                    _script(),
                    "boot",
                    str(self.scratch),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pid: int = wait_until(self._systemd_pid, timeout=30, what="systemd as PID 1")
        self.pid_ns = _pid_ns(self.pid)

    def _systemd_pid(self) -> int | None:
        if self.unshare.poll() is not None:
            raise AssertionError(f"the boot failed:\n{self.boot_log.read_text()}")
        try:
            children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children")
            (pid,) = (int(p) for p in children.read_text().split())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return None
        return pid if comm == "systemd" else None

    def run(
        self, *argv: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *argv],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{argv} exited {out.returncode}:\n{out.stdout}{out.stderr}")
        return out

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, "-p", ",".join(properties)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def write(self, path: str, text: str) -> None:
        self.run("sh", "-c", 'cat > "$1"', "write", path, input=text)

    def put(self, source: Path, path: str, mode: int = 0o644) -> None:
        """Copy a host file in through stdin: the container has a /tmp of its own, so a host
        path under /tmp (a clone checked out there, as CI may do) is not visible inside."""
        subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", "sh", "-c", 'cat > "$1"', "put", path],
            input=source.read_bytes(),
            capture_output=True,
            check=True,
            timeout=300,
        )
        self.run("chmod", f"{mode:o}", path)

    def teardown(self) -> None:
        """Kill PID 1 by its id, wait, remove the cgroups it made; keep scratch on failure."""
        if self.unshare.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.unshare.wait(60)

        # Processes die with the PID namespace, mounts with the mount namespace; the cgroups
        # systemd made in the host's hierarchies stay until removed, once empty.
        def remove_new_cgroups() -> bool:
            for cg in sorted(_tree(self.cgroup_roots), key=lambda p: -len(p.parts)):
                try:
                    cg.rmdir()
                except OSError:
                    return False
            return True

        wait_until(remove_new_cgroups, timeout=30, what="the container's cgroups to empty")

    def leftovers(self) -> Leftovers:
        processes = tuple(
            int(p)
            for p in os.listdir("/proc")
            if p.isdigit() and self.pid_ns is not None and _pid_ns(int(p)) == self.pid_ns
        )
        mounts = tuple(
            line
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if "hotfolder-test-" in line or str(self.scratch) in line
        )
        return Leftovers(processes, mounts, tuple(sorted(_tree(self.cgroup_roots))))

    def remove_scratch(self) -> None:
        shutil.rmtree(self.scratch)
