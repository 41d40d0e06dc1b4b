//! A small CRI client: the calls the kubelet makes to a container runtime's CRI endpoint
//! (`runtime.v1`, gRPC over a unix socket), blocking, for tests. The messages are in [`api`].
//!
//! ```no_run
//! use fdbox_cri_test::{api, CriClient};
//! let mut cri = CriClient::connect("/run/containerd/containerd.sock".as_ref()).unwrap();
//! let v = cri.version().unwrap();
//! println!("{} {}", v.runtime_name, v.runtime_version);
//! ```

pub mod api;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long one call may take before it fails with `DeadlineExceeded`, unless
/// [`CriClient::set_timeout`] says otherwise.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting the client's tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("connecting to the CRI socket {socket}: {source}")]
    Connect {
        socket: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {method}: {code:?}: {message}")]
    Call { method: String, code: tonic::Code, message: String },
}

impl Error {
    /// The gRPC status code of a failed call.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Call { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A blocking CRI v1 client on one gRPC connection to a unix socket.
pub struct CriClient {
    rt: tokio::runtime::Runtime,
    grpc: tonic::client::Grpc<Channel>,
    timeout: Duration,
}

impl CriClient {
    /// Connect to the CRI endpoint at `socket` (containerd's gRPC socket).
    pub fn connect(socket: &Path) -> Result<CriClient> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Runtime)?;
        let path = socket.to_path_buf();
        // The URI is required but unused: every connection goes to the socket.
        let endpoint = Endpoint::from_static("http://localhost").connect_timeout(Duration::from_secs(10));
        let channel = rt
            .block_on(endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { tokio::net::UnixStream::connect(path).await.map(hyper_util::rt::TokioIo::new) }
            })))
            .map_err(|source| Error::Connect { socket: socket.to_path_buf(), source })?;
        Ok(CriClient { rt, grpc: tonic::client::Grpc::new(channel), timeout: CALL_TIMEOUT })
    }

    /// How long each following call may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// One unary call: `service` is [`api::RUNTIME_SERVICE`] or [`api::IMAGE_SERVICE`].
    pub fn call<Req, Resp>(&mut self, service: &str, method: &str, req: Req) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let full = format!("{service}{method}");
        let fail = |status: tonic::Status| Error::Call { method: method.to_string(), code: status.code(), message: status.message().to_string() };
        let path = PathAndQuery::try_from(full.as_str())
            .map_err(|e| Error::Call { method: method.to_string(), code: tonic::Code::InvalidArgument, message: format!("gRPC path {full:?}: {e}") })?;
        let grpc = &mut self.grpc;
        let timeout = self.timeout;
        let call = async move {
            grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("connection not ready: {e}")))?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            let mut request = tonic::Request::new(req);
            // The server's deadline (the grpc-timeout header) and the client's.
            request.set_timeout(timeout);
            grpc.unary(request, path, codec).await.map(tonic::Response::into_inner)
        };
        self.rt
            .block_on(async move { tokio::time::timeout(timeout, call).await })
            .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded(format!("no answer within {timeout:?}"))))
            .map_err(fail)
    }

    fn runtime<Req, Resp>(&mut self, method: &str, req: Req) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.call(api::RUNTIME_SERVICE, method, req)
    }

    pub fn version(&mut self) -> Result<api::VersionResponse> {
        self.runtime("Version", api::VersionRequest { version: "v1".into() })
    }

    pub fn status(&mut self, verbose: bool) -> Result<api::StatusResponse> {
        self.runtime("Status", api::StatusRequest { verbose })
    }

    /// `RunPodSandbox` with `handler` (the RuntimeClass handler): the sandbox's id.
    pub fn run_pod_sandbox(&mut self, config: api::PodSandboxConfig, handler: &str) -> Result<String> {
        let r: api::RunPodSandboxResponse = self.runtime("RunPodSandbox", api::RunPodSandboxRequest { config: Some(config), runtime_handler: handler.into() })?;
        Ok(r.pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&mut self, id: &str, verbose: bool) -> Result<api::PodSandboxStatusResponse> {
        self.runtime("PodSandboxStatus", api::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose })
    }

    pub fn list_pod_sandbox(&mut self) -> Result<Vec<api::PodSandbox>> {
        let r: api::ListPodSandboxResponse = self.runtime("ListPodSandbox", api::ListPodSandboxRequest { filter: None })?;
        Ok(r.items)
    }

    pub fn stop_pod_sandbox(&mut self, id: &str) -> Result<()> {
        let _: api::StopPodSandboxResponse = self.runtime("StopPodSandbox", api::StopPodSandboxRequest { pod_sandbox_id: id.into() })?;
        Ok(())
    }

    pub fn remove_pod_sandbox(&mut self, id: &str) -> Result<()> {
        let _: api::RemovePodSandboxResponse = self.runtime("RemovePodSandbox", api::RemovePodSandboxRequest { pod_sandbox_id: id.into() })?;
        Ok(())
    }

    /// `CreateContainer` in sandbox `pod` (created with `sandbox_config`): the container's id.
    pub fn create_container(&mut self, pod: &str, config: api::ContainerConfig, sandbox_config: api::PodSandboxConfig) -> Result<String> {
        let req = api::CreateContainerRequest { pod_sandbox_id: pod.into(), config: Some(config), sandbox_config: Some(sandbox_config) };
        let r: api::CreateContainerResponse = self.runtime("CreateContainer", req)?;
        Ok(r.container_id)
    }

    pub fn start_container(&mut self, id: &str) -> Result<()> {
        let _: api::StartContainerResponse = self.runtime("StartContainer", api::StartContainerRequest { container_id: id.into() })?;
        Ok(())
    }

    /// `StopContainer`: the stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop_container(&mut self, id: &str, timeout: i64) -> Result<()> {
        let _: api::StopContainerResponse = self.runtime("StopContainer", api::StopContainerRequest { container_id: id.into(), timeout })?;
        Ok(())
    }

    pub fn remove_container(&mut self, id: &str) -> Result<()> {
        let _: api::RemoveContainerResponse = self.runtime("RemoveContainer", api::RemoveContainerRequest { container_id: id.into() })?;
        Ok(())
    }

    /// The containers of sandbox `pod` (all of them with `None`).
    pub fn list_containers(&mut self, pod: Option<&str>) -> Result<Vec<api::Container>> {
        let filter = pod.map(|p| api::ContainerFilter { pod_sandbox_id: p.into(), ..Default::default() });
        let r: api::ListContainersResponse = self.runtime("ListContainers", api::ListContainersRequest { filter })?;
        Ok(r.containers)
    }

    pub fn container_status(&mut self, id: &str, verbose: bool) -> Result<api::ContainerStatusResponse> {
        self.runtime("ContainerStatus", api::ContainerStatusRequest { container_id: id.into(), verbose })
    }

    /// `ExecSync`: `cmd` in the running container `id`, its stdout, stderr and exit code.
    pub fn exec_sync(&mut self, id: &str, cmd: &[&str], timeout: i64) -> Result<api::ExecSyncResponse> {
        let req = api::ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), timeout };
        self.runtime("ExecSync", req)
    }

    /// `ImageStatus`: the image if the runtime has it.
    pub fn image_status(&mut self, image: &str) -> Result<Option<api::Image>> {
        let req = api::ImageStatusRequest { image: Some(api::ImageSpec { image: image.into() }), verbose: false };
        let r: api::ImageStatusResponse = self.call(api::IMAGE_SERVICE, "ImageStatus", req)?;
        Ok(r.image)
    }
}
