use std::sync::Arc;
pub struct Responder;
impl Responder {
    pub async fn serve(self, _stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
        Ok(())
    }
}
pub async fn bind(
    _c: &crate::config::AgentConfig,
    _a: Arc<crate::agent::Agent>,
) -> anyhow::Result<Option<Responder>> {
    Ok(None)
}
