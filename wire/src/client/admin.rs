//! [`Admin`]: databases and tables. Catalog changes go straight to shard 0, which owns the
//! catalog.

use std::time::Duration;

use crate::client::connection::Connection;
use crate::client::error::ClientError;
use crate::protocol::messages::*;

/// Catalog operations on a node.
#[derive(Clone, Debug)]
pub struct Admin {
    connection: Connection,
}

impl Admin {
    /// Admin over `connection`.
    pub fn new(connection: Connection) -> Self {
        Self { connection }
    }

    async fn change<R: Request>(&self, request: &R) -> Result<R::Response, ClientError> {
        let address = self.connection.catalog_address().await?;
        let answer = self.connection.call(address, request, &[], Duration::ZERO).await?;
        self.connection.invalidate_metadata().await;
        Ok(answer.body)
    }

    async fn ask<R: Request>(&self, request: &R) -> Result<R::Response, ClientError> {
        let address = self.connection.config().bootstrap;
        Ok(self.connection.call(address, request, &[], Duration::ZERO).await?.body)
    }

    /// Creates a database.
    pub async fn create_database(
        &self,
        name: &str,
        if_not_exists: bool,
    ) -> Result<(), ClientError> {
        self.change(&CreateDatabaseRequest { name: name.into(), if_not_exists }).await.map(|_| ())
    }

    /// Drops a database (`cascade`: with its tables).
    pub async fn drop_database(
        &self,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<(), ClientError> {
        self.change(&DropDatabaseRequest { name: name.into(), if_exists, cascade })
            .await
            .map(|_| ())
    }

    /// Database names.
    pub async fn list_databases(&self) -> Result<Vec<String>, ClientError> {
        Ok(self.ask(&ListDatabasesRequest).await?.names)
    }

    /// Creates a table; returns its id.
    pub async fn create_table(
        &self,
        path: &TablePath,
        definition: TableDefinition,
        if_not_exists: bool,
    ) -> Result<u64, ClientError> {
        let request = CreateTableRequest { path: path.clone(), definition, if_not_exists };
        Ok(self.change(&request).await?.table_id)
    }

    /// Drops a table.
    pub async fn drop_table(&self, path: &TablePath, if_exists: bool) -> Result<(), ClientError> {
        self.change(&DropTableRequest { path: path.clone(), if_exists }).await.map(|_| ())
    }

    /// Table names of a database.
    pub async fn list_tables(&self, database: &str) -> Result<Vec<String>, ClientError> {
        Ok(self.ask(&ListTablesRequest { database: database.into() }).await?.tables)
    }

    /// A table and its buckets' state.
    pub async fn describe_table(
        &self,
        path: &TablePath,
    ) -> Result<DescribeTableResponse, ClientError> {
        self.ask(&DescribeTableRequest { path: path.clone() }).await
    }
}
