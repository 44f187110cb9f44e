//! Optional leader election through a `coordination.k8s.io/v1` Lease, so two operator replicas
//! never reconcile at once. A replica takes the Lease when it is free or its holder stopped
//! renewing for `lease_duration`; writes carry the read `resourceVersion`, so of two racing
//! replicas only one wins. The leader renews every third of the duration; when it cannot, it
//! cancels the token it was given (the binary then exits and is restarted as a follower).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

pub const LEASE_NAME: &str = "distribute-operator";

pub struct Election {
    pub api: Api<Lease>,
    pub identity: String,
    pub lease_duration: Duration,
}

/// Pure: may `me` take a Lease held as `spec` at `now`?
pub fn can_take(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> bool {
    let Some(spec) = spec else { return true };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == me {
        return true;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renewed.0 + SignedDuration::from_secs(secs) < now
}

impl Election {
    fn spec(&self, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(15),
            ),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt to take or renew the Lease; `Ok(true)` when this replica holds it.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        match self.api.get_opt(LEASE_NAME).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(None, 0)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Some(mut lease) => {
                if !can_take(lease.spec.as_ref(), &self.identity, Timestamp::now()) {
                    return Ok(false);
                }
                let old = lease.spec.clone().unwrap_or_default();
                let ours = old.holder_identity.as_deref() == Some(self.identity.as_str());
                let transitions = old.lease_transitions.unwrap_or(0) + i32::from(!ours);
                let acquired = if ours { old.acquire_time } else { None };
                lease.spec = Some(self.spec(acquired, transitions));
                match self
                    .api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Waits until this replica leads, then keeps renewing in the background; `lost` is
    /// cancelled when leadership cannot be kept.
    pub async fn lead(self, lost: CancellationToken) {
        let retry = self.lease_duration / 3;
        loop {
            match self.try_hold().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: lease not readable"),
            }
            tokio::select! {
                _ = lost.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
        tracing::info!(identity = %self.identity, "leading");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = lost.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                match self.try_hold().await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => {
                        tracing::error!("lost the leader lease; stopping");
                        lost.cancel();
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str, renewed_secs: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_secs).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn who_may_take_the_lease() {
        let now = Timestamp::from_second(100).unwrap();
        assert!(can_take(None, "a", now));
        assert!(can_take(Some(&held("a", 99)), "a", now));
        assert!(!can_take(Some(&held("b", 90)), "a", now));
        assert!(can_take(Some(&held("b", 80)), "a", now));
        assert!(can_take(Some(&held("", 99)), "a", now));
    }
}
