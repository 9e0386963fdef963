"""Platforms and the deterministic patch catalog (KB ids / packages, severities, CVEs, release dates)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    key: str
    platform_type: str  # Linux | Windows
    platform_name: str
    platform_version: str
    plugin: str  # the AWS-RunPatchBaseline step that runs on it (docs/aws-behaviours.md §2)
    details: str  # EC2 PlatformDetails


PLATFORMS: dict[str, Platform] = {
    "al2023": Platform("al2023", "Linux", "Amazon Linux", "2023", "PatchLinux", "Linux/UNIX"),
    "ubuntu2204": Platform("ubuntu2204", "Linux", "Ubuntu", "22.04", "PatchLinux", "Linux/UNIX"),
    "rhel9": Platform("rhel9", "Linux", "Red Hat Enterprise Linux", "9.4", "PatchLinux", "Red Hat Enterprise Linux"),
    "win2022": Platform(
        "win2022", "Windows", "Microsoft Windows Server 2022 Datacenter", "10.0.20348", "PatchWindows", "Windows"
    ),
}
PLATFORM_WEIGHTS = (("al2023", 35), ("ubuntu2204", 25), ("rhel9", 15), ("win2022", 25))


@dataclass(frozen=True)
class Patch:
    kb_id: str
    title: str
    classification: str
    severity: str  # vendor severity (Critical, Important, Medium, Moderate, Low, "")
    cve_ids: tuple[str, ...]
    released: float  # epoch seconds

    @property
    def compliance_severity(self) -> str:
        """ComplianceItem severity the baseline assigns (CRITICAL|HIGH|MEDIUM|LOW|INFORMATIONAL|UNSPECIFIED)."""
        return {
            "Critical": "CRITICAL",
            "Important": "HIGH",
            "High": "HIGH",
            "Medium": "MEDIUM",
            "Moderate": "MEDIUM",
            "Low": "LOW",
        }.get(self.severity, "UNSPECIFIED")

    @property
    def is_security(self) -> bool:
        return self.classification in ("Security", "SecurityUpdates", "CriticalUpdates")


_LINUX_PACKAGES = [
    "kernel",
    "openssl",
    "openssh",
    "glibc",
    "curl",
    "sudo",
    "systemd",
    "bash",
    "python3",
    "vim",
    "libxml2",
    "krb5-libs",
    "nss",
    "tzdata",
    "expat",
    "sqlite",
    "zlib",
    "git",
    "rsync",
    "less",
]
_UBUNTU_PACKAGES = [
    "linux-image-generic",
    "openssl",
    "openssh-server",
    "libc6",
    "curl",
    "sudo",
    "systemd",
    "bash",
    "python3.10",
    "vim",
    "libxml2",
    "krb5-user",
    "libnss3",
    "tzdata",
    "libexpat1",
    "sqlite3",
    "zlib1g",
    "git",
    "rsync",
    "less",
]


def _cves(rng: random.Random, n: int, year_hint: int) -> tuple[str, ...]:
    return tuple(f"CVE-{year_hint - rng.randrange(0, 2)}-{rng.randrange(1000, 49999)}" for _ in range(n))


def build_catalog(platform: str, seed: int, now: float) -> list[Patch]:
    """Patches for one platform. Linux lists two versions of a package under the same KBId (docs/aws-behaviours.md
    §7)."""
    rng = random.Random(f"catalog:{platform}:{seed}")
    out: list[Patch] = []
    if platform == "win2022":
        for i in range(36):
            kb = f"KB50{rng.randrange(10000, 49999)}"
            released = now - rng.randrange(5, 400) * 86400
            cls = rng.choice(["SecurityUpdates", "SecurityUpdates", "CriticalUpdates", "Updates", "UpdateRollups"])
            sev = rng.choice(["Critical", "Important", "Important", "Moderate", "Low"]) if cls != "Updates" else ""
            month = 1 + i % 12
            title = f"2026-{month:02d} Cumulative Update for Microsoft server operating system version 21H2 ({kb})"
            if cls != "SecurityUpdates":
                title = f"2026-{month:02d} Update for Windows Server 2022 for x64-based Systems ({kb})"
            cves = _cves(rng, rng.randrange(1, 4), 2026) if cls in ("SecurityUpdates", "CriticalUpdates") else ()
            out.append(Patch(kb, title, cls, sev, cves, released))
        return out
    names = _UBUNTU_PACKAGES if platform == "ubuntu2204" else _LINUX_PACKAGES
    dist = {"al2023": "amzn2023", "rhel9": "el9_4", "ubuntu2204": "ubuntu22.04"}[platform]
    for name in names:
        versions = 2 if name in ("kernel", "linux-image-generic", "openssl", "glibc", "libc6") else 1
        for v in range(versions):
            arch = "x86_64" if platform != "ubuntu2204" else "amd64"
            kb = f"{name}.{arch}" if platform != "ubuntu2204" else name
            ver = f"{rng.randrange(1, 9)}.{rng.randrange(0, 20)}.{rng.randrange(0, 300)}-{rng.randrange(1, 200) + v}"
            title = f"{name}.{arch}:0:{ver}.{dist}" if platform != "ubuntu2204" else f"{name}:{ver}{dist}"
            cls = rng.choice(["Security", "Security", "Bugfix", "Enhancement"])
            if platform == "ubuntu2204":
                sev = rng.choice(["High", "Medium", "Low", "Medium"]) if cls == "Security" else ""
            else:
                sev = rng.choice(["Critical", "Important", "Medium", "Low"]) if cls == "Security" else "None"
            cves = _cves(rng, rng.randrange(1, 3), 2026) if cls == "Security" else ()
            out.append(Patch(kb, title, cls, sev, cves, now - rng.randrange(3, 300) * 86400))
    return out
