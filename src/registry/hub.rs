//! What the registry's one lock guards: every client (the channel `all`), the
//! subscribers of every other channel, and the history.
//!
//! Publishes (`history.publish`, then the offers to the channel's
//! subscribers), joins (replay or reset, then the insert) and leaves all run
//! under that lock, so a message is either in a joining client's replay or
//! offered to it live, never both and never neither, and every client sees
//! the one order of ids.

use std::collections::HashMap;
use std::sync::Arc;

use crate::channel::ChannelName;
use crate::client::{Client, ClientId};
use crate::history::{ChannelStats, History, HistoryLimits};
use crate::message::Frames;

/// Every client, every channel's subscribers, and the stored messages.
pub struct Hub {
    clients: HashMap<ClientId, Arc<Client>>,
    /// The subscribers of each channel but `all` (which is `clients`). A
    /// channel is here while it has at least one.
    channels: HashMap<ChannelName, HashMap<ClientId, Arc<Client>>>,
    /// Message ids and the per-channel history.
    pub history: History<Frames>,
}

/// One channel as `/channels` lists it.
#[derive(Debug, Clone)]
pub struct ChannelView {
    pub name: ChannelName,
    /// Clients on it now (every client for `all`).
    pub subscribers: usize,
    pub stats: ChannelStats,
}

impl Hub {
    pub(super) fn new(limits: HistoryLimits) -> Hub {
        Hub {
            clients: HashMap::new(),
            channels: HashMap::new(),
            history: History::new(limits),
        }
    }

    /// Adds `client` to `all` and to each of its channels.
    pub(super) fn insert(&mut self, client: &Arc<Client>) {
        self.clients.insert(client.id, Arc::clone(client));
        for channel in client.subscription.channels.iter().filter(|c| !c.is_all()) {
            let subscribers = self.channels.entry(channel.clone()).or_default();
            if subscribers.is_empty() {
                self.history.set_subscribed(channel, true);
            }
            subscribers.insert(client.id, Arc::clone(client));
        }
    }

    /// Removes `client` from everything it is on.
    pub(super) fn remove(&mut self, client: &Client) {
        if self.clients.remove(&client.id).is_none() {
            return;
        }
        for channel in client.subscription.channels.iter().filter(|c| !c.is_all()) {
            let Some(subscribers) = self.channels.get_mut(channel.as_str()) else {
                continue;
            };
            subscribers.remove(&client.id);
            if subscribers.is_empty() {
                self.channels.remove(channel.as_str());
                self.history.set_subscribed(channel, false);
            }
        }
    }

    /// Clients connected now.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client with this id.
    pub fn get(&self, id: ClientId) -> Option<&Arc<Client>> {
        self.clients.get(&id)
    }

    /// Every client, in no set order.
    pub fn clients(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.values()
    }

    /// The clients on `channel`, in no set order: O(its subscribers), not O(all clients).
    pub fn subscribers(&self, channel: &ChannelName) -> Vec<&Arc<Client>> {
        if channel.is_all() {
            return self.clients.values().collect();
        }
        self.channels
            .get(channel.as_str())
            .map(|subscribers| subscribers.values().collect())
            .unwrap_or_default()
    }

    fn subscriber_count(&self, channel: &ChannelName) -> usize {
        if channel.is_all() {
            return self.clients.len();
        }
        self.channels.get(channel.as_str()).map_or(0, HashMap::len)
    }

    /// `channel`, if it has subscribers or history.
    pub fn channel(&self, channel: &ChannelName) -> Option<ChannelView> {
        let stats = self.history.channel_stats(channel.as_str())?;
        Some(ChannelView {
            name: channel.clone(),
            subscribers: self.subscriber_count(channel),
            stats,
        })
    }

    /// Every channel with subscribers or history (a subscribed channel keeps
    /// its history entry), `all` included, sorted by name.
    pub fn channel_list(&self) -> Vec<ChannelView> {
        let mut list: Vec<ChannelView> = self
            .history
            .channels()
            .map(|(name, stats)| ChannelView {
                name: name.clone(),
                subscribers: self.subscriber_count(name),
                stats,
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}
