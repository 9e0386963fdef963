"""GET /_sandbox/calls/principals: who called what, and the IAM action, resource ARN and condition keys AWS would
authorize for it (Service Authorization Reference; S3's operation-to-action table; SSE-KMS calls S3 makes as the
caller, "Using server-side encryption with AWS KMS keys (SSE-KMS)", Amazon S3 User Guide)."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.sandbox.conftest import active_members

BUCKET = "principals-test"


def dummy(sb, service: str, region: str = "us-east-1", **creds: str):
    """The credentials code under test uses: the emulator's dummy keys (the management account)."""
    creds = creds or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=sb.url, region_name=region, **creds)


def member_client(sb, account: str, service: str, region: str = "us-east-1", **assume: str):
    creds = dummy(sb, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{sb.fleet['member_role_name']}", RoleSessionName="under-test", **assume
    )["Credentials"]
    return dummy(
        sb,
        service,
        region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def principal(sb, arn: str) -> dict:
    return next(p for p in sb.principals() if p["principal"] == arn)


def authorizations(record: dict, operation: str) -> list[dict]:
    return [a for a in record["authorizations"] if a["operation"] == operation]


@pytest.fixture
def fresh(sandbox):
    sandbox.reset_principals()
    return sandbox


def test_the_hub_credentials_the_member_role_and_test_setup_are_told_apart(fresh) -> None:
    sb = fresh
    member = active_members(sb)[0]["id"]
    dummy(sb, "organizations").list_roots()
    member_client(sb, member, "ssm").describe_instance_information()
    sb.client("s3").list_buckets()
    setup_creds = sb.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}", RoleSessionName="setup"
    )["Credentials"]
    boto3.client(
        "ssm",
        endpoint_url=sb.url,
        region_name="us-east-1",
        aws_access_key_id=setup_creds["AccessKeyId"],
        aws_secret_access_key=setup_creds["SecretAccessKey"],
        aws_session_token=setup_creds["SessionToken"],
    ).list_commands()
    found = {p["principal"]: (p["kind"], p["account_id"], p["role_name"], p["calls"]) for p in sb.principals()}
    mgmt = sb.fleet["management_account_id"]
    assert found[f"arn:aws:iam::{mgmt}:root"] == (
        "account",
        mgmt,
        None,
        {"organizations.ListRoots": 1, "sts.AssumeRole": 1},
    )
    role = f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}"
    assert found[role] == ("assumed-role", member, sb.fleet["member_role_name"], {"ssm.DescribeInstanceInformation": 1})
    # Setup's own call and the session it assumed: both "setup", never the hub's or the member's.
    assert found["setup"][0] == "setup"
    assert found["setup"][3] == {"s3.ListBuckets": 1, "sts.AssumeRole": 1, "ssm.ListCommands": 1}


def test_s3_operations_map_to_their_iam_actions_and_sse_kms_to_the_key(fresh) -> None:
    sb = fresh
    sb.client("s3").create_bucket(Bucket=BUCKET)
    key = sb.client("kms").create_key()["KeyMetadata"]
    sb.client("kms").create_alias(AliasName="alias/reports", TargetKeyId=key["KeyId"])
    s3 = dummy(sb, "s3")
    s3.put_object(Bucket=BUCKET, Key="pc/a.json", Body=b"{}", ServerSideEncryption="AES256")
    s3.put_object(
        Bucket=BUCKET, Key="pc/k.json", Body=b"{}", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/reports"
    )
    s3.get_object(Bucket=BUCKET, Key="pc/k.json")
    s3.head_object(Bucket=BUCKET, Key="pc/k.json")
    s3.get_object(Bucket=BUCKET, Key="pc/a.json")
    s3.list_objects_v2(Bucket=BUCKET, Prefix="pc/")
    record = principal(sb, f"arn:aws:iam::{sb.fleet['management_account_id']}:root")
    view = lambda op: sorted((a["action"], a["resource"]) for a in authorizations(record, op))  # noqa: E731
    assert view("s3.HeadObject") == [("s3:GetObject", f"arn:aws:s3:::{BUCKET}/pc/k.json")]  # no KMS call
    assert view("s3.ListObjectsV2") == [("s3:ListBucket", f"arn:aws:s3:::{BUCKET}")]
    assert authorizations(record, "s3.ListObjectsV2")[0]["context"]["s3:prefix"] == "pc/"
    assert view("s3.GetObject") == [
        ("kms:Decrypt", key["Arn"]),  # the alias resolved to the key it names
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/pc/a.json"),
        ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/pc/k.json"),
    ]
    puts = {a["resource"]: a for a in authorizations(record, "s3.PutObject")}
    assert puts[f"arn:aws:s3:::{BUCKET}/pc/a.json"]["context"]["s3:x-amz-server-side-encryption"] == "AES256"
    kms_put = puts[f"arn:aws:s3:::{BUCKET}/pc/k.json"]["context"]
    assert kms_put["s3:x-amz-server-side-encryption-aws-kms-key-id"] == "alias/reports"  # as the request sent it
    generate = puts[key["Arn"]]
    assert (
        generate["action"] == "kms:GenerateDataKey"
        and generate["context"]["kms:ViaService"] == "s3.us-east-1.amazonaws.com"
    )


def test_an_upload_without_header_uses_the_bucket_default_kms_key(fresh) -> None:
    sb = fresh
    bucket = BUCKET + "-default"
    sb.client("s3").create_bucket(Bucket=bucket)
    key_arn = sb.client("kms").create_key()["KeyMetadata"]["Arn"]
    sb.client("s3").put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]
        },
    )
    dummy(sb, "s3").put_object(Bucket=bucket, Key="x", Body=b"x")
    record = principal(sb, f"arn:aws:iam::{sb.fleet['management_account_id']}:root")
    assert ("kms:GenerateDataKey", key_arn) in {
        (a["action"], a["resource"]) for a in authorizations(record, "s3.PutObject")
    }


def test_send_command_is_authorized_on_the_document_the_nodes_and_the_output_bucket(fresh) -> None:
    sb = fresh
    member, region, ids = next(
        (a["id"], r, ids)
        for a in active_members(sb)
        for r in sb.fleet["regions"]
        if len(ids := sorted(n["instance_id"] for n in sb.nodes(a["id"], r) if n["managed"])) >= 2
    )
    ssm = member_client(sb, member, "ssm", region)
    some = [ids[0], next((i for i in ids if i.startswith("mi-")), ids[1])]
    ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=some, Parameters={"Operation": ["Scan"]})
    ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        Targets=[{"Key": "tag:Patch", "Values": ["true"]}],
        Parameters={"Operation": ["Scan"]},
        OutputS3BucketName="command-output",
    )
    record = principal(sb, f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}")
    resources = {a["resource"] for a in authorizations(record, "ssm.SendCommand")}
    expected = {f"arn:aws:ssm:{region}::document/AWS-RunPatchBaseline", "arn:aws:s3:::command-output"}
    expected |= {f"arn:aws:ec2:{region}:{member}:instance/*", f"arn:aws:ssm:{region}:{member}:managed-instance/*"}
    for node in some:
        kind = "ssm" if node.startswith("mi-") else "ec2"
        expected.add(f"arn:aws:{kind}:{region}:{member}:{'managed-instance' if kind == 'ssm' else 'instance'}/{node}")
    assert resources == expected


def test_security_hub_organizations_and_sts_resources(fresh) -> None:
    sb = fresh
    member = active_members(sb)[0]["id"]
    external = {"ExternalId": "acme-7"}
    hub = member_client(sb, member, "securityhub", **external)
    hub.get_findings(MaxResults=1)
    org = dummy(sb, "organizations")
    root = org.list_roots()["Roots"][0]["Id"]
    org.list_accounts_for_parent(ParentId=root)
    record = principal(sb, f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}")
    assert [a["resource"] for a in authorizations(record, "securityhub.GetFindings")] == [
        f"arn:aws:securityhub:us-east-1:{member}:hub/default"
    ]
    hub_record = principal(sb, f"arn:aws:iam::{sb.fleet['management_account_id']}:root")
    assume = authorizations(hub_record, "sts.AssumeRole")
    assert [a["context"].get("sts:ExternalId") for a in assume] == ["acme-7"]
    assert assume[0]["resource"] == f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}"
    [walk] = authorizations(hub_record, "organizations.ListAccountsForParent")
    mgmt, org_id = sb.fleet["management_account_id"], sb.fleet["organization_id"]
    assert walk["resource"] == f"arn:aws:organizations::{mgmt}:root/{org_id}/{root}"


def test_batch_import_findings_is_authorized_on_each_findings_product(fresh) -> None:
    sb = fresh
    member = active_members(sb)[0]["id"]
    hub = member_client(sb, member, "securityhub")
    product = f"arn:aws:securityhub:us-east-1:{member}:product/{member}/default"
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": "f-1",
        "ProductArn": product,
        "GeneratorId": "g",
        "AwsAccountId": member,
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-11-01T00:00:00Z",
        "UpdatedAt": "2026-11-01T00:00:00Z",
        "Severity": {"Label": "LOW"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "i-1"}],
    }
    hub.batch_import_findings(Findings=[finding])
    record = principal(sb, f"arn:aws:iam::{member}:role/{sb.fleet['member_role_name']}")
    assert [(a["action"], a["resource"]) for a in authorizations(record, "securityhub.BatchImportFindings")] == [
        ("securityhub:BatchImportFindings", product)
    ]


def test_an_operation_without_a_known_iam_mapping_is_flagged(fresh) -> None:
    sb = fresh
    sb.client("s3").create_bucket(Bucket=BUCKET + "-acl")
    dummy(sb, "s3").get_bucket_acl(Bucket=BUCKET + "-acl")
    record = principal(sb, f"arn:aws:iam::{sb.fleet['management_account_id']}:root")
    [acl] = authorizations(record, "s3.GetBucketAcl")
    assert (acl["action"], acl["mapped"]) == ("s3:GetBucketAcl", False)


def test_reset_and_the_record_file(fresh, tmp_path, monkeypatch) -> None:
    sb = fresh
    dummy(sb, "organizations").list_roots()
    assert sb.principals()
    sb.reset_principals()
    assert sb.principals() == []
    dummy(sb, "sts").get_caller_identity()
    sb.reset_calls()  # the call counters only: the per-principal record stays
    assert [p["calls"] for p in sb.principals()] == [{"sts.GetCallerIdentity": 1}]
    # What a stopping sandbox writes when $PATCH_SANDBOX_RECORD_DIR is set (tests/deploy/recording.py reads it).
    monkeypatch.setenv("PATCH_SANDBOX_RECORD_DIR", str(tmp_path))
    written = sb.server.write_record()
    assert written is not None and written.parent == tmp_path
    [only] = json.loads(written.read_text())["principals"]
    assert only["calls"] == {"sts.GetCallerIdentity": 1}
