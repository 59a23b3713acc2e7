//! Reading a member's Prometheus metrics (`GET <client URL>/metrics`) for the cluster page's
//! charts, with the cluster's TLS settings: the CA, client certificate and server name its etcd
//! connections use. A cluster that requires client certificates (kubeadm's, most production
//! ones) serves `/metrics` on its client URLs behind the same TLS.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::TlsConfig;
use crate::etcd::gateway::EtcdCluster;

impl EtcdCluster {
    /// The text of `GET {client_url}/metrics`, within `deadline`; why not, in a few words.
    pub async fn member_metrics(
        &self,
        client_url: &str,
        deadline: Duration,
    ) -> Result<String, String> {
        let tls = self.tls_settings();
        let fetch = async {
            let (client, url) = http_client(tls.as_ref(), client_url, deadline).await?;
            let resp = client.get(url).send().await.map_err(|e| reason(&e))?;
            let resp = resp
                .error_for_status()
                .map_err(|e| format!("/metrics answered {}", e.status().unwrap_or_default()))?;
            resp.text().await.map_err(|e| reason(&e))
        };
        tokio::time::timeout(deadline, fetch)
            .await
            .map_err(|_| format!("no answer after {:.1} s", deadline.as_secs_f64()))?
    }
}

/// A client for one member's `/metrics`, and the URL to ask. With `tls.server_name`, the URL
/// names that server (what its certificate is checked against) and the client is told where it
/// is: the address of `client_url`.
async fn http_client(
    tls: Option<&TlsConfig>,
    client_url: &str,
    deadline: Duration,
) -> Result<(reqwest::Client, reqwest::Url), String> {
    let base = client_url.trim_end_matches('/');
    let mut url = reqwest::Url::parse(&format!("{base}/metrics"))
        .map_err(|e| format!("`{client_url}` is not a URL: {e}"))?;
    let mut builder = reqwest::Client::builder()
        .timeout(deadline)
        .connect_timeout(Duration::from_millis(800).min(deadline))
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    if let Some(tls) = tls {
        if let Some(ca) = &tls.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| reason(&e))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &tls.identity_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key.expose().as_bytes());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).map_err(|e| reason(&e))?);
        }
        if let Some(name) = &tls.server_name {
            let host = url.host_str().unwrap_or_default().to_string();
            let port = url.port_or_known_default().unwrap_or(2379);
            let addr: SocketAddr = match host.trim_matches(['[', ']']).parse() {
                Ok(ip) => SocketAddr::new(ip, port),
                Err(_) => tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| format!("{host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{host}: no address"))?,
            };
            url.set_host(Some(name))
                .map_err(|e| format!("tls.server_name `{name}`: {e}"))?;
            builder = builder.resolve(name, addr);
        }
    }
    let client = builder.build().map_err(|e| reason(&e))?;
    Ok((client, url))
}

/// An error and its causes, without the URL (the member's is shown beside it).
fn reason(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        let text = match text.split_once(" for url (") {
            Some((head, _)) => head.to_string(),
            None => text,
        };
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}
