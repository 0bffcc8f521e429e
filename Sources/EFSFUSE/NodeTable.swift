// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import Synchronization
import SystemPackage

/// The identity of a backing object: device and inode number.
struct BackingID: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64

    init(_ st: FileStatus) {
        device = st.device
        inode = st.inode
    }
}

/// One backing object the kernel knows by a node id: an `O_PATH` handle to it (so renames and links on the backing
/// store never invalidate it), its identity, and caches.
///
/// The handle is closed when the last reference goes: the table's (dropped at `forget`) and those of open files.
final class Node: Sendable {
    let nodeID: UInt64
    /// `O_PATH | O_NOFOLLOW` handle of the backing object.
    let handle: FileDescriptor
    let id: BackingID
    let kind: FileStatus.Kind
    /// The path below the mount root this object was last seen at, for messages only.
    let display: Mutex<String>
    /// Whether the backing file is encrypted and its plaintext size, as of a stat stamp.
    let probe = Mutex<Probe?>(nil)
    /// Serialises `O_APPEND` writes to an encrypted file (size, then write).
    let appendLock = Mutex<Void>(())
    /// The directory node and name the kernel last looked this object up by: what ``NodeTable/pruneCandidates``
    /// hands to `fuse_lowlevel_notify_inval_entry`.
    let location: Mutex<(parent: UInt64, name: String)>

    struct Probe: Sendable {
        var stamp: Stamp
        var encrypted: Bool
        var plaintextSize: Int64
    }

    /// What must be unchanged for a cached probe to hold.
    struct Stamp: Equatable, Sendable {
        var size: Int64
        var mtime: Int
        var mtimeNanoseconds: Int
        var ctime: Int
        var ctimeNanoseconds: Int

        init(_ st: FileStatus) {
            size = st.size
            mtime = Int(st.modificationTime.tv_sec)
            mtimeNanoseconds = Int(st.modificationTime.tv_nsec)
            ctime = Int(st.changeTime.tv_sec)
            ctimeNanoseconds = Int(st.changeTime.tv_nsec)
        }

        /// Same size and modification time: only metadata (mode, owner, links) can have changed.
        func sameContent(as other: Stamp) -> Bool {
            size == other.size && mtime == other.mtime && mtimeNanoseconds == other.mtimeNanoseconds
        }
    }

    init(nodeID: UInt64, handle: FileDescriptor, status: FileStatus, display: String, parent: UInt64 = 0, name: String = "") {
        self.nodeID = nodeID
        self.handle = handle
        self.id = BackingID(status)
        self.kind = status.kind
        self.display = Mutex(display)
        self.location = Mutex((parent, name))
    }

    deinit { Sys.close(handle) }

    /// A path that reaches the backing object through its handle (a `/proc/self/fd` magic link).
    var procPath: FilePath { FilePath("/proc/self/fd/\(handle.rawValue)") }

    /// `procPath/name`: a child of this directory.
    func procPath(_ name: String) -> FilePath { procPath.appending(name) }

    var displayPath: FilePath { FilePath(display.withLock { $0 }) }

    /// The display path of a child.
    func displayPath(_ name: String) -> FilePath {
        let d = display.withLock { $0 }
        return FilePath(d.isEmpty ? name : d + "/" + name)
    }
}

/// Node ids to nodes, with the kernel's lookup counts. Node ids are never reused, so generation numbers stay 0.
final class NodeTable: Sendable {
    static let rootID: UInt64 = 1

    private struct Entry {
        var node: Node
        var lookups: UInt64
    }
    private struct State {
        var byID: [UInt64: Entry] = [:]
        var byBacking: [BackingID: UInt64] = [:]
        var nextID: UInt64 = 2
    }
    private let state = Mutex(State())
    let root: Node

    init(rootHandle: FileDescriptor, rootStatus: FileStatus) {
        root = Node(nodeID: Self.rootID, handle: rootHandle, status: rootStatus, display: "")
        state.withLock { s in
            s.byID[Self.rootID] = Entry(node: root, lookups: 1)
            s.byBacking[root.id] = Self.rootID
        }
    }

    /// The node for a node id the kernel sent.
    func node(_ id: UInt64) throws(Errno) -> Node {
        if id == Self.rootID { return root }
        guard let n = state.withLock({ $0.byID[id]?.node }) else { throw Errno.staleNFSFileHandle }
        return n
    }

    /// Records one more kernel lookup of the object `handle` names (taking ownership of `handle`: it is closed if
    /// the object already has a node).
    func remember(handle: FileDescriptor, status: FileStatus, display: String, parent: UInt64, name: String) -> Node {
        let id = BackingID(status)
        let (node, duplicate) = state.withLock { s -> (Node, Bool) in
            if let existing = s.byBacking[id], var e = s.byID[existing] {
                e.lookups += 1
                s.byID[existing] = e
                return (e.node, true)
            }
            let n = Node(nodeID: s.nextID, handle: handle, status: status, display: display, parent: parent, name: name)
            s.nextID += 1
            s.byID[n.nodeID] = Entry(node: n, lookups: 1)
            s.byBacking[id] = n.nodeID
            return (n, false)
        }
        if duplicate {
            Sys.close(handle)
            node.display.withLock { $0 = display }
            node.location.withLock { $0 = (parent, name) }
        }
        return node
    }

    /// The kernel dropped `count` lookups of `id`.
    func forget(_ id: UInt64, _ count: UInt64) {
        guard id != Self.rootID else { return }
        let dropped: Node? = state.withLock { s in
            guard var e = s.byID[id] else { return nil }
            e.lookups -= min(e.lookups, count)
            if e.lookups > 0 {
                s.byID[id] = e
                return nil
            }
            s.byID[id] = nil
            if s.byBacking[e.node.id] == id { s.byBacking[e.node.id] = nil }
            return e.node
        }
        _ = dropped  // released here, outside the lock; the handle closes once open files let go too
    }

    /// Updates the display path and location of the object with identity `id`, if it has a node.
    func rename(_ id: BackingID, display: String, parent: UInt64, name: String) {
        let n = state.withLock { s in s.byBacking[id].flatMap { s.byID[$0]?.node } }
        n?.display.withLock { $0 = display }
        n?.location.withLock { $0 = (parent, name) }
    }

    /// When more than `keeping` objects have nodes (each holds a descriptor), the `(parent, name)` entries of the
    /// oldest others, for the kernel to drop from its cache (`fuse_lowlevel_notify_inval_entry`); it then forgets
    /// the ones nothing uses, and their descriptors close. Without this a large tree (an untar of a kernel source)
    /// runs the daemon out of descriptors, since the kernel keeps every inode it has seen while memory allows.
    func pruneCandidates(keeping: Int) -> [(parent: UInt64, name: String)] {
        let nodes: [Node] = state.withLock { s in
            guard s.byID.count > keeping else { return [] }
            let oldest = s.byID.keys.filter { $0 != Self.rootID }.sorted().prefix(s.byID.count - keeping)
            return oldest.compactMap { s.byID[$0]?.node }
        }
        return nodes.map { n in n.location.withLock { $0 } }.filter { $0.parent != 0 && !$0.name.isEmpty }
    }

    /// Every node, for shutdown.
    var count: Int { state.withLock { $0.byID.count } }
}
