//! A stand-in for the third-party system the clients come from.

use mongodb::bson::{doc, Document};

/// Client of the third-party CRM. Injected into change units with `Dep<ThirdPartyClients>`.
#[derive(Debug, Clone)]
pub(crate) struct ThirdPartyClients {
    endpoint: String,
}

impl ThirdPartyClients {
    /// Connects to the CRM at `endpoint`.
    pub(crate) fn connect(endpoint: &str) -> Self {
        ThirdPartyClients {
            endpoint: endpoint.to_owned(),
        }
    }

    /// Fetches every client. The stand-in returns a fixed set, so runs are repeatable.
    pub(crate) async fn fetch_clients(&self) -> anyhow::Result<Vec<Document>> {
        let names = [
            "Ada Lovelace",
            "Grace Hopper",
            "Edsger Dijkstra",
            "Barbara Liskov",
        ];
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                doc! {
                    "_id": format!("client-{:03}", i + 1),
                    "name": *name,
                    "email": format!("{}@example.com", name.to_lowercase().replace(' ', ".")),
                    "source": &self.endpoint,
                }
            })
            .collect())
    }
}
