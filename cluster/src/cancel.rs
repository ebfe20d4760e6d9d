//! Ctrl-C as a [`tokio::sync::watch`] channel: its value turns `true` once
//! the work is to stop. Awaited, never polled; a channel whose sender is
//! gone without saying `true` never cancels.

use std::future::Future;

use tokio::sync::watch;

/// Completes once `cancel` says `true` (at once if it already does);
/// never when its sender is gone without saying so.
pub(crate) async fn cancelled(cancel: &watch::Receiver<bool>) {
    let mut cancel = cancel.clone();
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether `cancel` says `true` now.
pub(crate) fn is_cancelled(cancel: &watch::Receiver<bool>) -> bool {
    *cancel.borrow()
}

/// A future that completes once `cancel` turns `true` after now; never if
/// it already is `true` (a clean-up after Ctrl-C runs as usual), or if
/// there is no channel.
pub(crate) fn armed(
    cancel: Option<&watch::Receiver<bool>>,
) -> impl Future<Output = ()> + Send + 'static {
    let cancel = cancel.filter(|rx| !is_cancelled(rx)).cloned();
    async move {
        match cancel {
            Some(rx) => cancelled(&rx).await,
            None => std::future::pending().await,
        }
    }
}
