//! Names of the objects built for a cluster, and the DNS name of its pods; one place so the
//! builders, the controller and the tests agree.

pub fn statefulset(cluster: &str) -> String {
    cluster.to_string()
}
pub fn headless_service(cluster: &str) -> String {
    format!("{cluster}-peers")
}
pub fn gateway_service(cluster: &str) -> String {
    format!("{cluster}-gateway")
}
pub fn api_service(cluster: &str) -> String {
    format!("{cluster}-api")
}
pub fn metrics_service(cluster: &str) -> String {
    format!("{cluster}-metrics")
}
pub fn config_map(cluster: &str) -> String {
    format!("{cluster}-config")
}
pub fn generated_secret(cluster: &str) -> String {
    format!("{cluster}-generated")
}
pub fn pdb(cluster: &str) -> String {
    cluster.to_string()
}
pub fn ingress(cluster: &str) -> String {
    format!("{cluster}-gateway")
}
pub fn hpa(cluster: &str) -> String {
    cluster.to_string()
}
pub fn service_monitor(cluster: &str) -> String {
    cluster.to_string()
}
/// Pod `ordinal` of the StatefulSet.
pub fn pod(cluster: &str, ordinal: i32) -> String {
    format!("{}-{ordinal}", statefulset(cluster))
}
/// Stable DNS name of a pod through the headless Service.
pub fn pod_dns(cluster: &str, namespace: &str, ordinal: i32) -> String {
    format!(
        "{}.{}.{namespace}.svc.cluster.local",
        pod(cluster, ordinal),
        headless_service(cluster)
    )
}
/// The ordinal of a pod name of this cluster's StatefulSet.
pub fn ordinal(cluster: &str, pod_name: &str) -> Option<i32> {
    pod_name
        .strip_prefix(&statefulset(cluster))?
        .strip_prefix('-')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pod_names_and_ordinals() {
        assert_eq!(super::pod("s", 2), "s-2");
        assert_eq!(
            super::pod_dns("s", "ns", 0),
            "s-0.s-peers.ns.svc.cluster.local"
        );
        assert_eq!(super::ordinal("s", "s-12"), Some(12));
        assert_eq!(super::ordinal("s", "s-peers"), None);
        assert_eq!(super::ordinal("s", "st-1"), None);
    }
}
