"""Resource scoping of deploy/iam, read from the policies the templates create (resolved for concrete parameter
values and evaluated like IAM does): the document and node ARNs SendCommand may use, the member role path the hub
may assume, the reports bucket and prefix, the KMS key, the trust policies, the reports bucket's own policy, and
agreement with the configuration's defaults."""

from __future__ import annotations

import pytest

from include.patch_compliance.config import AccessConfig, ReportsConfig
from scripts.cfn_templates import HUB_TEMPLATE, MEMBER_TEMPLATE, TemplateError, load, policy_documents, resolve
from tests.deploy.iam_check import decide

MGMT, MEMBER, OTHER = "123456789012", "210987654321", "999988887777"
HUB_ARN = f"arn:aws:iam::{MGMT}:role/PatchComplianceHubRole"
BUCKET = "acme-patch-reports"
KEY = f"arn:aws:kms:eu-west-1:{MGMT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def docs(template, account: str, kind: str = "identity", **params):
    return [d for d in policy_documents(resolve(template, params, account_id=account)) if d.kind == kind]


def allows(documents, action: str, resource: str, **context: str) -> bool:
    return decide(documents, action, resource, context)[0] == "Allow"


def denies(documents, action: str, resource: str, **context: str) -> bool:
    return decide(documents, action, resource, context)[0] == "Deny"


@pytest.fixture(scope="module")
def member():
    return docs(MEMBER_TEMPLATE, MEMBER, HubRoleArn=HUB_ARN)


@pytest.fixture(scope="module")
def hub():
    return docs(HUB_TEMPLATE, MGMT, ReportsBucketName=BUCKET)


def test_send_command_runs_only_aws_run_patch_baseline_on_this_accounts_nodes(member) -> None:
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2"):
        assert allows(member, "ssm:SendCommand", f"arn:aws:ssm:{region}::document/AWS-RunPatchBaseline")
        assert allows(member, "ssm:SendCommand", f"arn:aws:ec2:{region}:{MEMBER}:instance/i-0123456789abcdef0")
        assert allows(member, "ssm:SendCommand", f"arn:aws:ssm:{region}:{MEMBER}:managed-instance/mi-0123456789abcdef0")
    for document in ("AWS-RunShellScript", "AWS-RunPowerShellScript", "AWS-RunPatchBaselineAssociation"):
        assert not allows(member, "ssm:SendCommand", f"arn:aws:ssm:us-east-1::document/{document}")
    assert not allows(member, "ssm:SendCommand", f"arn:aws:ec2:us-east-1:{OTHER}:instance/i-0123456789abcdef0")
    assert not allows(member, "ssm:SendCommand", f"arn:aws:ssm:us-east-1:{OTHER}:managed-instance/mi-0123456789abcdef0")
    assert not allows(member, "ssm:SendCommand", "arn:aws:s3:::command-output")


def test_send_command_may_write_only_the_named_output_bucket() -> None:
    with_bucket = docs(MEMBER_TEMPLATE, MEMBER, HubRoleArn=HUB_ARN, CommandOutputBucketName="command-output")
    assert allows(with_bucket, "ssm:SendCommand", "arn:aws:s3:::command-output")
    assert not allows(with_bucket, "ssm:SendCommand", "arn:aws:s3:::another-bucket")


def test_patch_state_reads_are_scoped_to_this_accounts_nodes(member) -> None:
    for action in ("ssm:DescribeInstancePatchStates", "ssm:DescribeInstancePatches"):
        assert allows(member, action, f"arn:aws:ec2:eu-west-1:{MEMBER}:instance/i-0123456789abcdef0")
        assert allows(member, action, f"arn:aws:ssm:eu-west-1:{MEMBER}:managed-instance/mi-0123456789abcdef0")
        assert not allows(member, action, f"arn:aws:ec2:eu-west-1:{OTHER}:instance/i-0123456789abcdef0")
        assert not allows(member, action, "*")


def test_security_hub_only_this_accounts_product_and_hub(member) -> None:
    own_product = f"arn:aws:securityhub:eu-west-1:{MEMBER}:product/{MEMBER}/default"
    assert allows(member, "securityhub:BatchImportFindings", own_product)
    assert not allows(
        member, "securityhub:BatchImportFindings", f"arn:aws:securityhub:eu-west-1:{OTHER}:product/{OTHER}/default"
    )
    assert not allows(
        member, "securityhub:BatchImportFindings", f"arn:aws:securityhub:eu-west-1:{MEMBER}:product/{OTHER}/default"
    )
    assert not allows(
        member, "securityhub:BatchImportFindings", "arn:aws:securityhub:eu-west-1::product/aws/ssm-patch-manager"
    )
    for action in (
        "securityhub:GetFindings",
        "securityhub:BatchUpdateFindings",
        "securityhub:ListEnabledProductsForImport",
    ):
        assert allows(member, action, f"arn:aws:securityhub:us-east-1:{MEMBER}:hub/default")
        assert not allows(member, action, f"arn:aws:securityhub:us-east-1:{OTHER}:hub/default")


def test_the_member_role_trusts_only_the_hub_role_with_the_optional_external_id() -> None:
    [plain] = docs(MEMBER_TEMPLATE, MEMBER, "trust", HubRoleArn=HUB_ARN)
    [statement] = plain.document["Statement"]
    assert statement == {
        "Sid": "TrustTheHubRoleOnly",
        "Effect": "Allow",
        "Principal": {"AWS": HUB_ARN},
        "Action": "sts:AssumeRole",
    }
    [with_id] = docs(MEMBER_TEMPLATE, MEMBER, "trust", HubRoleArn=HUB_ARN, ExternalId="acme-patching-7")
    assert with_id.document["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": "acme-patching-7"}}
    with pytest.raises(TemplateError, match="HubRoleArn"):
        resolve(MEMBER_TEMPLATE, {"HubRoleArn": f"arn:aws:iam::{MGMT}:root"})


def test_the_hub_assumes_only_the_member_role_at_path_slash(hub) -> None:
    assert allows(hub, "sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/PatchComplianceScanRole")
    assert allows(hub, "sts:AssumeRole", f"arn:aws:iam::{OTHER}:role/PatchComplianceScanRole")
    for arn in (
        f"arn:aws:iam::{MEMBER}:role/other/PatchComplianceScanRole",
        f"arn:aws:iam::{MEMBER}:role/PatchComplianceScanRoleX",
        f"arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole",
    ):
        assert not allows(hub, "sts:AssumeRole", arn), arn
    renamed = docs(HUB_TEMPLATE, MGMT, ReportsBucketName=BUCKET, MemberRoleName="ScanRole")
    assert allows(renamed, "sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/ScanRole")
    assert not allows(renamed, "sts:AssumeRole", f"arn:aws:iam::{MEMBER}:role/PatchComplianceScanRole")


def test_the_hub_reads_and_writes_only_the_reports_prefix_of_its_bucket(hub) -> None:
    assert allows(hub, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}")
    assert allows(hub, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/patch-compliance/latest/summary.json")
    assert allows(hub, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/patch-compliance/_staging/run=r/plan.json.gz")
    assert not allows(hub, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/elsewhere/x.json")
    assert not allows(hub, "s3:GetObject", "arn:aws:s3:::another-bucket/patch-compliance/x.json")
    assert not allows(hub, "s3:ListBucket", "arn:aws:s3:::another-bucket")
    # A failed publish deletes what it wrote (DeleteObjects), only under the prefix.
    assert allows(hub, "s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/patch-compliance/runs/r/summary.json")
    assert not allows(hub, "s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/elsewhere/x.json")
    for action in ("s3:PutBucketPolicy", "s3:GetObjectAcl", "s3:ListAllMyBuckets"):
        assert not allows(hub, action, f"arn:aws:s3:::{BUCKET}/patch-compliance/x.json"), action
    other_prefix = docs(HUB_TEMPLATE, MGMT, ReportsBucketName=BUCKET, ReportsPrefix="teams/sec")
    assert allows(other_prefix, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/teams/sec/latest/summary.json")
    assert not allows(other_prefix, "s3:PutObject", f"arn:aws:s3:::{BUCKET}/teams/other/x")


def test_kms_only_with_a_key_only_that_key_and_only_through_s3(hub) -> None:
    assert not allows(hub, "kms:GenerateDataKey", KEY, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"})
    keyed = docs(HUB_TEMPLATE, MGMT, ReportsBucketName=BUCKET, ReportsKmsKeyArn=KEY)
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert allows(keyed, action, KEY, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"})
        assert not allows(keyed, action, KEY, **{"kms:ViaService": "ec2.eu-west-1.amazonaws.com"})
        assert not allows(keyed, action, KEY)
        assert not allows(
            keyed, action, KEY.replace("1234abcd", "9999abcd"), **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
        )
    assert not allows(keyed, "kms:Encrypt", KEY, **{"kms:ViaService": "s3.eu-west-1.amazonaws.com"})


def test_organizations_reads_are_scoped_to_the_organization_of_the_management_account(hub) -> None:
    root, ou = (
        f"arn:aws:organizations::{MGMT}:root/o-abc123defg/r-ab12",
        f"arn:aws:organizations::{MGMT}:ou/o-abc123defg/ou-ab12-cdef3456",
    )
    for action in ("organizations:ListAccountsForParent", "organizations:ListOrganizationalUnitsForParent"):
        assert allows(hub, action, root) and allows(hub, action, ou)
        assert not allows(hub, action, root.replace(MGMT, OTHER))
    assert allows(hub, "organizations:ListRoots", "*")
    delegated = docs(HUB_TEMPLATE, OTHER, ReportsBucketName=BUCKET, ManagementAccountId=MGMT)
    assert allows(delegated, "organizations:ListAccountsForParent", root)
    for action in ("organizations:DescribeAccount", "organizations:ListAccounts", "organizations:CreateAccount"):
        assert not allows(hub, action, "*"), action


def test_the_reports_bucket_policy_denies_non_tls_and_unencrypted_uploads() -> None:
    created = docs(HUB_TEMPLATE, MGMT, "resource", ReportsBucketName=BUCKET)
    obj = f"arn:aws:s3:::{BUCKET}/patch-compliance/x.json"
    tls = {"aws:SecureTransport": "true"}
    assert denies(created, "s3:GetObject", obj, **{"aws:SecureTransport": "false"})
    assert denies(created, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", **{"aws:SecureTransport": "false"})
    assert denies(created, "s3:PutObject", obj, **tls)
    assert denies(created, "s3:PutObject", obj, **tls, **{"s3:x-amz-server-side-encryption": "aws:kms"})
    assert not denies(created, "s3:PutObject", obj, **tls, **{"s3:x-amz-server-side-encryption": "AES256"})
    assert not denies(created, "s3:GetObject", obj, **tls)

    keyed = docs(HUB_TEMPLATE, MGMT, "resource", ReportsBucketName=BUCKET, ReportsKmsKeyArn=KEY)
    sse = {"s3:x-amz-server-side-encryption": "aws:kms"}
    assert not denies(
        keyed, "s3:PutObject", obj, **tls, **sse, **{"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY}
    )
    assert denies(
        keyed, "s3:PutObject", obj, **tls, **sse, **{"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY[:-1] + "1"}
    )
    assert denies(keyed, "s3:PutObject", obj, **tls, **{"s3:x-amz-server-side-encryption": "AES256"})

    assert docs(HUB_TEMPLATE, MGMT, "resource", ReportsBucketName=BUCKET, CreateReportsBucket="false") == []


def test_the_created_bucket_is_encrypted_private_and_kept() -> None:
    def bucket(**params):
        return resolve(HUB_TEMPLATE, {"ReportsBucketName": BUCKET, **params}).resources["ReportsBucket"]["Properties"]

    [rule] = bucket()["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    [rule] = bucket(ReportsKmsKeyArn=KEY)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}
    assert set(bucket()["PublicAccessBlockConfiguration"].values()) == {True}
    raw = load(HUB_TEMPLATE)["Resources"]["ReportsBucket"]
    assert raw["DeletionPolicy"] == raw["UpdateReplacePolicy"] == "Retain"
    assert (
        "ReportsBucket"
        not in resolve(HUB_TEMPLATE, {"ReportsBucketName": BUCKET, "CreateReportsBucket": "false"}).resources
    )


def test_no_action_is_granted_by_wildcard() -> None:
    for template, params in (
        (HUB_TEMPLATE, {"ReportsBucketName": BUCKET, "ReportsKmsKeyArn": KEY}),
        (MEMBER_TEMPLATE, {"HubRoleArn": HUB_ARN}),
    ):
        for doc in docs(template, MGMT, **params):
            for statement in doc.document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in a for a in actions), (doc.name, statement.get("Sid"))


def test_the_templates_agree_with_the_configuration_defaults() -> None:
    member_params, hub_params = load(MEMBER_TEMPLATE)["Parameters"], load(HUB_TEMPLATE)["Parameters"]
    access = AccessConfig()
    assert (
        member_params["MemberRoleName"]["Default"] == hub_params["MemberRoleName"]["Default"] == access.member_role_name
    )
    assert hub_params["ReportsPrefix"]["Default"] == ReportsConfig(bucket=BUCKET).prefix
    # The member session the code asks for must fit the role's maximum; the config allows up to 12 hours.
    assert member_params["MaxSessionDuration"]["Default"] >= access.session_duration_seconds
    longest = member_params["MaxSessionDuration"]["MaxValue"]
    AccessConfig(session_duration_seconds=longest)
    with pytest.raises(ValueError):
        AccessConfig(session_duration_seconds=longest + 1)
    for external_id, ok in (("ab", True), ("a" * 1224, True), ("a", False), ("a" * 1225, False), ("acme:team/7", True)):
        try:
            AccessConfig(external_id=external_id)
            config_ok = True
        except ValueError:
            config_ok = False
        try:
            resolve(MEMBER_TEMPLATE, {"HubRoleArn": HUB_ARN, "ExternalId": external_id})
            template_ok = True
        except TemplateError:
            template_ok = False
        assert config_ok == template_ok == ok, external_id
