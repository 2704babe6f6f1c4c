//! CUDA graphs: a sequence of launches recorded once (stream capture) and
//! replayed with one driver call. Every argument is fixed at capture, so a
//! graph can only replay work whose buffers stay where they were and whose
//! step-dependent values (a step index, a bias correction) its kernels read
//! from device memory; the training step (`src/train/gpu.rs`) is written so.

use super::backend::backend;
use crate::Result;
use cust::sys::{CUgraph, CUgraphExec};

/// An instantiated CUDA graph on one GPU.
pub struct Graph {
    ordinal: usize,
    graph: CUgraph,
    exec: CUgraphExec,
}

// SAFETY: graph handles may be used from any thread of the process (CUDA
// driver API); `launch` and `drop` go through the backend's stream.
unsafe impl Send for Graph {}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph(cuda:{})", self.ordinal)
    }
}

impl Graph {
    /// Records the launches `record` makes on GPU `ordinal` (running none of
    /// them) into a graph. An allocation, copy or synchronisation inside
    /// `record` is an error, as in CUDA's global capture mode: make every
    /// buffer and upload every table first. Keep every buffer the launches
    /// use for as long as the graph may run: a temporary made inside
    /// `record` (served from the block cache without an allocation) goes
    /// back to the cache when dropped and may be handed to someone else.
    /// Launches, allocations, copies and waits from other threads wait
    /// while the recording lasts.
    pub fn capture(ordinal: usize, record: impl FnOnce() -> Result<()>) -> Result<Graph> {
        let (graph, exec) = backend(ordinal)?.capture(record)?;
        Ok(Graph { ordinal, graph, exec })
    }

    /// Runs the recorded launches, in order, on the GPU's stream.
    ///
    /// # Safety
    /// Every buffer the recorded launches use must still be allocated, and
    /// hold what they expect (the graph reads and writes them by address).
    pub unsafe fn launch(&self) -> Result<()> {
        // SAFETY: `exec` is this graph's live instantiation; the buffers are
        // the caller's contract.
        unsafe { backend(self.ordinal)?.launch_graph(self.exec) }
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: the handles are this graph's and are not used again.
        unsafe {
            cust::sys::cuGraphExecDestroy(self.exec);
            cust::sys::cuGraphDestroy(self.graph);
        }
    }
}
