// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFUSE
import EFSSystem

// FUSE_HANDLE_KILLPRIV_V2 (see the shim): the kernel leaves killing set-ID bits to the daemon. And FUSE over
// io_uring, which goes through the same hooks.
//
// The shim's state is thread-local variables inside static inline functions, and the Swift compiler emits such
// functions (with their variables) into every object file that calls them. So this is the only file that calls
// them: one copy of the state.

/// Routes `session`'s I/O through the shim so that the mount takes FUSE_HANDLE_KILLPRIV_V2 when the kernel offers
/// it. Call after fuse_session_mount, before the loop. Without it every write costs a GETXATTR of
/// security.capability first; if libfuse refuses, the mount still works, only slower.
func handleKillPrivilegesInDaemon(_ session: OpaquePointer) {
    _ = cfuse_session_handle_killpriv_v2(session)
}

// FUSE over io_uring (see the shim's uring.h): its state lives beside the I/O hooks above, so it is reached from
// this file too.

/// Whether the kernel lets daemons take requests through io_uring (the `fuse.enable_uring` module parameter).
func kernelAllowsIOURing() -> Bool { cfuse_uring_kernel_allows() != 0 }

/// Makes `perCPU` ring threads for each possible CPU, after fuse_session_mount (and the fork into the background)
/// and before the loop reads INIT, which then offers io_uring to the kernel. Returns the number of threads, or 0
/// (requests then come through /dev/fuse only). Requires the I/O hooks (``handleKillPrivilegesInDaemon(_:)``).
/// With `onlyIfFaster`, also 0 where the threads cannot run at the idle policy (see the shim): at the normal
/// policy random reads are slower than through /dev/fuse.
func startRingQueues(_ session: OpaquePointer, perCPU: Int, onlyIfFaster: Bool) -> Int {
    Int(cfuse_uring_prepare(session, Int32(perCPU), onlyIfFaster ? 1 : 0))
}

/// Whether the ring threads run at the idle policy, and how often they were moved to the normal one because they
/// waited for a CPU.
func ringQueuePolicy() -> (idle: Bool, promotions: Int) { (cfuse_uring_idle_policy() != 0, Int(cfuse_uring_promotions())) }

/// The ring threads that have served a request.
func servingRingQueues() -> Int { Int(cfuse_uring_serving()) }

/// Ends the ring threads once each has finished the request it is serving (within 0.2 s). Requests the kernel
/// sends afterwards wait for the unmount, as they do on /dev/fuse once the loop has ended.
func stopRingQueues() { cfuse_uring_stop() }

extension EFSFileSystem {
    /// Whether the kernel asked, in the request this thread is serving (on node `requestNode`), for set-ID bits to
    /// be killed. Asking again returns false.
    func takeKillSetIDRequest(_ requestNode: UInt64) -> Bool {
        let node = cfuse_take_kill_suidgid()
        return node != 0 && node == requestNode
    }

    /// ``killSetIDBits(_:)`` on node `ino` if the request being served asks for it.
    func killSetIDBitsIfAsked(_ ino: UInt64) throws {
        guard takeKillSetIDRequest(ino) else { return }
        try killSetIDBits(try nodes.node(ino))
    }

    /// What ext4 does before a write, truncate or chown by a caller without CAP_FSETID: clears set-user-ID, and
    /// set-group-ID when group execute is set (a set-group-ID bit without it marks mandatory locking and stays).
    /// The daemon's own change of the backing file would not, since the daemon (root) has CAP_FSETID.
    func killSetIDBits(_ node: Node) throws {
        guard node.kind == .regular else { return }
        let mode = try Sys.fstat(node.handle).mode & 0o7777
        var kept = mode & ~CFlags.setUserID
        if mode & (CFlags.setGroupID | 0o010) == CFlags.setGroupID | 0o010 { kept &= ~CFlags.setGroupID }
        if kept != mode { try Sys.chmod(node.procPath, kept) }
    }
}
