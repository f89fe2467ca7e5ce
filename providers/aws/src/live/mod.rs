//! The live AWS backend (cargo feature `live`): the official SDK clients, one per account and
//! region, reading and writing a deployment's Security Groups.
//!
//! - **Credentials**: the SDK's default chain (environment, profile, web identity / IRSA,
//!   ECS, IMDS; `AWS_ENDPOINT_URL` honoured). A placement with `role` (and `external_id`)
//!   is reached through STS AssumeRole, cached per role. Before any other call the caller
//!   identity's account must be the placement's `account`: a job pointed at the wrong account
//!   stops there. Without credentials the run fails, except against a loopback endpoint (an
//!   emulator), where fixed dummy keys are used.
//! - **Retries**: standard mode (exponential backoff with jitter on throttling such as
//!   `RequestLimitExceeded` and on 5xx), `INTENTWALL_AWS_MAX_ATTEMPTS` attempts (default 5),
//!   explicit connect / attempt / operation timeouts.
//! - **Observe** ([`Aws::observe`]): the VPC must exist; its groups are listed (paginated),
//!   written down as the `describe-security-groups` document ([`doc`]) and read by the
//!   snapshot loader, so live and recorded state normalise identically.
//! - **Execute** ([`Aws::execute`]): see [`write`].

pub mod doc;
pub mod error;
pub mod iam;
pub mod preflight;
pub mod write;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_ec2::types::Filter;
use intentwall_contract::live::{is_loopback, ErrorKind, ProviderError};
use intentwall_contract::DeploymentIntent;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};

pub use write::execute;

/// A target's placement settings (`account`, `region`, `vpc`, optional `role`, `external_id`).
pub type Placement = BTreeMap<String, String>;

pub use intentwall_contract::live::Observation;

/// An account the job can act in: credentials and who they are.
#[derive(Debug, Clone)]
struct Account {
    credentials: SharedCredentialsProvider,
    /// The caller identity's ARN: the `who` of every audit event.
    arn: String,
}

/// The AWS clients of one run; clones share them (and their caches).
#[derive(Debug, Clone, Default)]
pub struct Aws {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    base: OnceCell<SdkConfig>,
    /// Credentials by role ARN ("" for the job's own identity), checked once per account.
    accounts: Mutex<HashMap<(String, String), Account>>,
}

/// A connected EC2 client for one target.
#[derive(Debug, Clone)]
pub struct Ec2 {
    /// The client (the placement's region and account).
    pub client: aws_sdk_ec2::Client,
    /// `deployment/aws`, for messages.
    pub target: String,
    /// The caller identity's ARN.
    pub who: String,
}

fn setting<'a>(target: &str, p: &'a Placement, key: &str) -> Result<&'a str, ProviderError> {
    intentwall_contract::live::setting("aws", target, p, key)
}

fn max_attempts() -> u32 {
    intentwall_contract::live::env_number("INTENTWALL_AWS_MAX_ATTEMPTS", 5).clamp(1, 20) as u32
}

impl Aws {
    /// Clients are made on first use.
    pub fn new() -> Aws {
        Aws::default()
    }

    async fn base(&self) -> &SdkConfig {
        self.inner
            .base
            .get_or_init(|| async {
                // every client gets its placement's region; the base region only serves the
                // credential chain's own STS calls (web identity), so without AWS_REGION it is
                // fixed rather than asked of the instance metadata service
                let region = std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".into());
                aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(region))
                    .retry_config(
                        RetryConfig::standard()
                            .with_max_attempts(max_attempts())
                            .with_initial_backoff(Duration::from_millis(200)),
                    )
                    .timeout_config(
                        TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(5))
                            .operation_attempt_timeout(Duration::from_secs(30))
                            .operation_timeout(Duration::from_secs(120))
                            .build(),
                    )
                    .load()
                    .await
            })
            .await
    }

    /// The job's own credentials; dummy keys only for a loopback endpoint.
    async fn own_credentials(
        &self,
        target: &str,
    ) -> Result<SharedCredentialsProvider, ProviderError> {
        let base = self.base().await;
        let endpoint = base.endpoint_url().unwrap_or("");
        let found = match base.credentials_provider() {
            Some(p) => p
                .provide_credentials()
                .await
                .map(|_| p)
                .map_err(|e| e.to_string()),
            None => Err("no credentials provider".into()),
        };
        match found {
            Ok(p) => Ok(p),
            Err(_) if is_loopback(endpoint) => {
                Ok(SharedCredentialsProvider::new(Credentials::new(
                    "intentwall-loopback",
                    "intentwall-loopback",
                    None,
                    None,
                    "loopback",
                )))
            }
            Err(why) => Err(ProviderError::new(
                ErrorKind::Auth,
                target,
                "credentials",
                format!(
                    "no AWS credentials (environment, profile, web identity, ECS or instance \
                     metadata): {why}"
                ),
            )),
        }
    }

    /// The account of a placement: assume its role if it names one, then check that the
    /// identity is in the placement's account (once per role and account).
    async fn account(&self, target: &str, p: &Placement) -> Result<Account, ProviderError> {
        let want = setting(target, p, "account")?;
        let region = setting(target, p, "region")?;
        let role = p.get("role").map(String::as_str);
        let external_id = p.get("external_id").map(String::as_str);
        self.identity(target, want, role, external_id, region).await
    }

    /// Credentials in account `want`: the job's own, or role `role` assumed with them; the
    /// caller identity must be in `want`, else nothing is read or written there.
    async fn identity(
        &self,
        target: &str,
        want: &str,
        role: Option<&str>,
        external_id: Option<&str>,
        region: &str,
    ) -> Result<Account, ProviderError> {
        let role = role.unwrap_or("").to_string();
        let key = (role.clone(), want.to_string());
        let mut accounts = self.inner.accounts.lock().await;
        if let Some(a) = accounts.get(&key) {
            return Ok(a.clone());
        }
        let base = self.base().await;
        let own = self.own_credentials(target).await?;
        let credentials = if role.is_empty() {
            own
        } else {
            let mut b = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("intentwall")
                .region(Region::new(region.to_string()))
                .configure(base);
            if let Some(x) = external_id {
                b = b.external_id(x);
            }
            SharedCredentialsProvider::new(b.build_from_provider(own).await)
        };
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(base)
                .region(Region::new(region.to_string()))
                .credentials_provider(credentials.clone())
                .build(),
        );
        let call = if role.is_empty() {
            "sts:GetCallerIdentity"
        } else {
            "sts:AssumeRole+GetCallerIdentity"
        };
        let id = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| error::classify(target, call, &e))?;
        let got = id.account().unwrap_or("");
        let arn = id.arn().unwrap_or("").to_string();
        if got != want {
            return Err(ProviderError::new(
                ErrorKind::Auth,
                target,
                call,
                format!(
                    "the credentials are for account {got} ({arn}), the placement is account \
                     {want}: nothing was read or written"
                ),
            ));
        }
        tracing::debug!(target: "intentwall::aws", %arn, account = want, "identity checked");
        let account = Account { credentials, arn };
        accounts.insert(key, account.clone());
        Ok(account)
    }

    /// An IAM client acting in `account` (through role `via` there, if given), its identity
    /// checked; with the caller ARN for audit events.
    pub async fn iam(
        &self,
        account: &str,
        via: Option<&str>,
        external_id: Option<&str>,
    ) -> Result<(aws_sdk_iam::Client, String), ProviderError> {
        let target = format!("aws account {account}");
        let a = self
            .identity(&target, account, via, external_id, "us-east-1")
            .await?;
        let conf = aws_sdk_iam::config::Builder::from(self.base().await)
            .region(Region::new("us-east-1"))
            .credentials_provider(a.credentials)
            .build();
        Ok((aws_sdk_iam::Client::from_conf(conf), a.arn))
    }

    /// The EC2 client for a target, its identity checked.
    pub async fn ec2(&self, target: &str, p: &Placement) -> Result<Ec2, ProviderError> {
        let account = self.account(target, p).await?;
        let region = setting(target, p, "region")?;
        let conf = aws_sdk_ec2::config::Builder::from(self.base().await)
            .region(Region::new(region.to_string()))
            .credentials_provider(account.credentials)
            .build();
        Ok(Ec2 {
            client: aws_sdk_ec2::Client::from_conf(conf),
            target: target.to_string(),
            who: account.arn,
        })
    }

    /// The who of audit events for a target (its identity checked).
    pub async fn who(&self, target: &str, p: &Placement) -> Result<String, ProviderError> {
        Ok(self.account(target, p).await?.arn)
    }

    /// Read a target: its VPC's groups, normalised as a snapshot of them would be.
    pub async fn observe(
        &self,
        target: &str,
        p: &Placement,
        intent: &DeploymentIntent,
    ) -> Result<Observation, ProviderError> {
        let ec2 = self.ec2(target, p).await?;
        observe_with(&ec2, p, intent).await
    }
}

/// [`Aws::observe`] with a client in hand.
pub async fn observe_with(
    ec2: &Ec2,
    p: &Placement,
    intent: &DeploymentIntent,
) -> Result<Observation, ProviderError> {
    let target = ec2.target.as_str();
    let vpc = setting(target, p, "vpc")?;
    // a VPC that does not exist would read as "no groups": planning would create everything
    // in a VPC no one can use, so its absence is an error
    let vpcs = ec2
        .client
        .describe_vpcs()
        .vpc_ids(vpc)
        .send()
        .await
        .map_err(|e| error::classify(target, "ec2:DescribeVpcs", &e))?;
    if vpcs.vpcs().is_empty() {
        return Err(ProviderError::new(
            ErrorKind::NotFound,
            target,
            "ec2:DescribeVpcs",
            format!("VPC {vpc} does not exist in this account and region"),
        ));
    }
    let groups = groups_of(
        ec2,
        vec![Filter::builder().name("vpc-id").values(vpc).build()],
    )
    .await?;
    let lists = prefix_lists(ec2, &doc::named_lists(&groups)).await?;
    let document = doc::document(&groups, &lists);
    let state = crate::snapshot::parse(&document, intent).map_err(|e| {
        ProviderError::new(
            ErrorKind::Other,
            target,
            "ec2:DescribeSecurityGroups",
            format!("the response does not read as a security group document: {e}"),
        )
    })?;
    Ok(Observation { state, document })
}

/// The prefix lists `ids` with their entries, over all pages. A list that cannot be read is
/// an error, never an empty list: a rule naming it would then seem to match nothing.
pub async fn prefix_lists(
    ec2: &Ec2,
    ids: &[String],
) -> Result<Vec<doc::PrefixList>, ProviderError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let call = "ec2:DescribeManagedPrefixLists";
    let mut pages = ec2
        .client
        .describe_managed_prefix_lists()
        .set_prefix_list_ids(Some(ids.to_vec()))
        .into_paginator()
        .send();
    let mut lists = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::classify(&ec2.target, call, &e))?;
        lists.extend(page.prefix_lists().iter().cloned());
    }
    let mut out = Vec::new();
    for list in lists {
        let Some(id) = list.prefix_list_id().map(str::to_string) else {
            continue;
        };
        let call = "ec2:GetManagedPrefixListEntries";
        let mut pages = ec2
            .client
            .get_managed_prefix_list_entries()
            .prefix_list_id(&id)
            .into_paginator()
            .send();
        let mut entries = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::classify(&ec2.target, call, &e))?;
            entries.extend(page.entries().iter().cloned());
        }
        out.push(doc::PrefixList { list, entries });
    }
    if let Some(missing) = ids.iter().find(|id| {
        !out.iter()
            .any(|l| l.list.prefix_list_id() == Some(id.as_str()))
    }) {
        return Err(ProviderError::new(
            ErrorKind::NotFound,
            &ec2.target,
            call,
            format!("prefix list {missing}, named by a rule, was not in the answer"),
        ));
    }
    tracing::debug!(target: "intentwall::aws", target = %ec2.target, lists = out.len(), "read prefix lists");
    Ok(out)
}

/// Every group matching the filters, over all pages.
pub async fn groups_of(
    ec2: &Ec2,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::SecurityGroup>, ProviderError> {
    let mut pages = ec2
        .client
        .describe_security_groups()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| error::classify(&ec2.target, "ec2:DescribeSecurityGroups", &e))?;
        out.extend(page.security_groups().iter().cloned());
    }
    tracing::debug!(target: "intentwall::aws", target = %ec2.target, groups = out.len(), "described security groups");
    Ok(out)
}
