"""Names and patterns shared by several layers, defined once (the bottom of the dependency order).

Config validation, the trigger form, staging keys, the tables, Security Hub and the UI all read these; nothing
here imports anything of the project.
"""

from __future__ import annotations

from typing import Final

# The environment variable that names the YAML config file (config.py loads it; dag_layout.py reads it at parse
# time).
CONFIG_ENV = "PATCH_COMPLIANCE_CONFIG"

# Normalised severities, most to least severe: the table vocabulary, the config's sla_days keys, the ASFF
# mapping and the chart order.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")
COMPLIANCE_STATUSES = ("COMPLIANT", "NON_COMPLIANT", "UNKNOWN")

# An AWS region name such as eu-west-1, us-gov-west-1, cn-north-1.
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"
ACCOUNT_ID_PATTERN = r"^\d{12}$"
OU_ID_PATTERN = r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$"
ROOT_ID_PATTERN = r"^r-[0-9a-z]{4,32}$"
# An OU is named by id or by path from the root ("Root/Workloads/Prod"): paths survive re-creating an emulator.
OU_REF_PATTERN = r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|Root(/[^/]+)*)$"
# A wave name is a task group id and a staging key segment.
WAVE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

# The DAGs whose runs produce the fleet's reports (the page shows their data; trends reads their history).
FLEET_DAG_IDS = ("patch_compliance_scan", "patch_compliance_collect")

# The SSM document the scans run (Scan, or Install with the opt-in).
PATCH_DOCUMENT: Final = "AWS-RunPatchBaseline"
# The GeneratorId stamped on every Security Hub finding of ours (one finding per node); the console link
# filters on it.
FINDINGS_GENERATOR_ID = "patch-compliance/node-patch-state"

# The remediation DAG's own waves (staging segments and task groups beside the config's waves): the canary nodes
# first, and the verification rescan. A config wave may not take these names while remediation is enabled.
CANARY_WAVE = "canary_nodes"
RESCAN_WAVE = "rescan"
REMEDIATION_WAVES = (CANARY_WAVE, RESCAN_WAVE)
