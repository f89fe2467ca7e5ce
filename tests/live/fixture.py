"""Sets up and edits state in the AWS emulator for tests/live_aws.rs, as another tool or a
person at the console would: boto3 (installed with moto), never intentwall's own code.
Every command acts in one account, reached by STS AssumeRole (the emulator keeps a separate
state per account), and prints JSON on stdout.

  vpc ACCOUNT REGION CIDR                      -> {"vpc": id, "default_sg": id}
  sg ACCOUNT REGION VPC NAME                   -> {"group": id}   (unmanaged, one ssh rule)
  authorize ACCOUNT REGION VPC NAME PORT CIDR  -> {}   (hand-added ingress rule)
  revoke-one ACCOUNT REGION VPC NAME           -> {"revoked": permission}
  pl-rule ACCOUNT REGION VPC NAME PORT CIDRS   -> {"list": id}  (a customer prefix list of the
                                                  comma-separated CIDRS, and an ingress rule
                                                  from it on tcp/PORT of group NAME)
  owned-in-use ACCOUNT REGION VPC NAME SUBNET  -> {"group": id, "eni": id}  (a group tagged
                                                  managed-by=intentwall that no intent makes,
                                                  carried by a network interface of a new
                                                  subnet SUBNET of the VPC)
  groups ACCOUNT REGION VPC                    -> describe-security-groups of the VPC
  role ACCOUNT REGION NAME                     -> {"trust": doc, "policy": inline policy "intentwall"}
"""
import json
import os
import sys

import boto3

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]


def creds(account, region):
    sts = boto3.client("sts", region_name=region, endpoint_url=ENDPOINT,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/fixture", RoleSessionName="fixture")["Credentials"]
    return dict(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                aws_session_token=c["SessionToken"])


def ec2(account, region):
    sts = boto3.client("sts", region_name=region, endpoint_url=ENDPOINT,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/fixture", RoleSessionName="fixture")["Credentials"]
    return boto3.client("ec2", region_name=region, endpoint_url=ENDPOINT,
                        aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"])


def group_id(c, vpc, name):
    gs = c.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                             {"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    return gs[0]["GroupId"]


def main(argv):
    cmd, account, region = argv[0], argv[1], argv[2]
    if cmd == "role":
        iam = boto3.client("iam", region_name=region, endpoint_url=ENDPOINT, **creds(account, region))
        role = iam.get_role(RoleName=argv[3])["Role"]
        pol = iam.get_role_policy(RoleName=argv[3], PolicyName="intentwall")["PolicyDocument"]
        json.dump({"trust": role["AssumeRolePolicyDocument"], "policy": pol}, sys.stdout, default=str)
        return
    c = ec2(account, region)
    if cmd == "vpc":
        vpc = c.create_vpc(CidrBlock=argv[3])["Vpc"]["VpcId"]
        default = group_id(c, vpc, "default")
        out = {"vpc": vpc, "default_sg": default}
    elif cmd == "sg":
        vpc, name = argv[3], argv[4]
        g = c.create_security_group(GroupName=name, Description="made by hand", VpcId=vpc)["GroupId"]
        c.authorize_security_group_ingress(GroupId=g, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "ops"}]}])
        out = {"group": g}
    elif cmd == "authorize":
        vpc, name, port, cidr = argv[3], argv[4], int(argv[5]), argv[6]
        c.authorize_security_group_ingress(GroupId=group_id(c, vpc, name), IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}])
        out = {}
    elif cmd == "revoke-one":
        vpc, name = argv[3], argv[4]
        g = c.describe_security_groups(GroupIds=[group_id(c, vpc, name)])["SecurityGroups"][0]
        perm = g["IpPermissions"][0]
        for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
            if perm.get(k):
                perm = {**{x: perm[x] for x in ("IpProtocol", "FromPort", "ToPort") if x in perm}, k: perm[k][:1]}
                break
        c.revoke_security_group_ingress(GroupId=g["GroupId"], IpPermissions=[perm])
        out = {"revoked": perm}
    elif cmd == "pl-rule":
        vpc, name, port, cidrs = argv[3], argv[4], int(argv[5]), argv[6].split(",")
        pl = c.create_managed_prefix_list(
            PrefixListName=f"office-{port}", AddressFamily="IPv4", MaxEntries=5,
            Entries=[{"Cidr": x, "Description": "by hand"} for x in cidrs])["PrefixList"]["PrefixListId"]
        c.authorize_security_group_ingress(GroupId=group_id(c, vpc, name), IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "PrefixListIds": [{"PrefixListId": pl, "Description": "by hand"}]}])
        out = {"list": pl}
    elif cmd == "owned-in-use":
        vpc, name, cidr = argv[3], argv[4], argv[5]
        g = c.create_security_group(
            GroupName=name, Description="left behind", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": "managed-by", "Value": "intentwall"}]}])["GroupId"]
        subnet = c.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]
        eni = c.create_network_interface(SubnetId=subnet, Groups=[g])["NetworkInterface"]["NetworkInterfaceId"]
        out = {"group": g, "eni": eni}
    elif cmd == "groups":
        out = c.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [argv[3]]}])
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
