// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFUSE
import EFS
import EFSSystem
import Synchronization
import SystemPackage

/// The file system behind `efs mount`: a view of a directory tree of an EFS volume in which encrypted files read and
/// write as plaintext, and plain files pass through.
///
/// Every operation here is synchronous and runs on one of libfuse's worker threads; the FUSE glue
/// (`Operations.swift`) turns thrown errors into errno replies through ``FUSEErrno``.
final class EFSFileSystem: Sendable {
    let session: EFSSession
    let nodes: NodeTable
    let encrypted = SharedEncryptedFiles()
    /// The volume root's identity: its `.efs` entry is hidden.
    let volumeRoot: BackingID?
    /// The volume served, loaded once: new files and directories get its recovery agents (a `.efs` directory
    /// copied into the tree is data, never another volume).
    let volume: Volume
    /// The daemon's effective uid: when it is root, objects created for another uid are handed to that uid.
    let daemonUID: UInt32
    let attributeTimeout: Double = 1.0
    let entryTimeout: Double = 1.0
    /// Where one-line messages go (standard error, or a test's collector).
    let log: @Sendable (String) -> Void

    init(session: EFSSession, rootHandle: FileDescriptor, rootStatus: FileStatus, volumeRoot: BackingID?, volume: Volume,
         log: @escaping @Sendable (String) -> Void) {
        self.session = session
        self.volume = volume
        self.nodes = NodeTable(rootHandle: rootHandle, rootStatus: rootStatus)
        self.volumeRoot = volumeRoot
        self.daemonUID = Sys.effectiveUserID
        self.log = log
    }

    // MARK: - Names

    /// Names the mount never shows, and refuses to create or rename onto: directory markers, temporary files of
    /// swift-efs, and the volume's configuration directory.
    func isHidden(_ parent: Node, _ name: String) -> Bool {
        name == DirectoryMarker.name || TemporaryName.isTemporary(name)
            || (name == Volume.configDirectoryName && parent.id == volumeRoot)
    }

    func checkVisible(_ parent: Node, _ name: String) throws(Errno) {
        if isHidden(parent, name) { throw Errno.noSuchFileOrDirectory }
    }

    func checkCreatable(_ parent: Node, _ name: String) throws(Errno) {
        if isHidden(parent, name) { throw Errno.notPermitted }
        if name.utf8.count > 255 { throw Errno.fileNameTooLong }
    }

    // MARK: - Lookup and attributes

    /// Looks `name` up in `parent` and records a kernel lookup of the result.
    func lookup(_ parent: Node, _ name: String) throws -> (Node, FileStatus) {
        try checkVisible(parent, name)
        let fd = try Sys.openat(parent.handle, name, [.pathOnly, .noFollow])
        let st: FileStatus
        do { st = try Sys.fstat(fd) } catch {
            Sys.close(fd)
            throw error
        }
        let node = nodes.remember(handle: fd, status: st, display: parent.displayPath(name).string, parent: parent.nodeID, name: name)
        return (node, st)
    }

    /// The size the mount shows: the plaintext size for encrypted files, the backing size otherwise.
    func shownSize(_ node: Node, _ st: FileStatus) -> Int64 {
        guard st.kind == .regular else { return st.size }
        if let f = encrypted.openFile(node.id) { return Int64(f.size) }
        return probe(node, st).plaintextSize
    }

    /// Whether the backing file is encrypted, and its plaintext size, cached until the backing file changes.
    ///
    /// The header is read without moving the backing file's access time (a stat must not look like a read). A file
    /// the daemon may not read (mode 0, say, when the daemon is not root) keeps what the last probe found as long
    /// as its size and modification time are unchanged: a chmod changes no content.
    func probe(_ node: Node, _ st: FileStatus) -> Node.Probe {
        let stamp = Node.Stamp(st)
        let previous = node.probe.withLock { $0 }
        if let previous, previous.stamp == stamp { return previous }
        var result = Node.Probe(stamp: stamp, encrypted: false, plaintextSize: st.size)
        if st.kind == .regular {
            if let fd = (try? Sys.open(node.procPath, [.readOnly, .noAccessTime])) ?? (try? Sys.open(node.procPath, .readOnly)) {
                defer { Sys.close(fd) }
                if EncryptedFileInfo.hasMagic(fd) {
                    result.encrypted = true
                    // A file whose header cannot be read shows its backing size; opening it reports the damage.
                    if let size = try? session.plaintextSize(of: fd, path: node.displayPath) {
                        result.plaintextSize = Int64(size)
                    }
                }
            } else if let previous, previous.stamp.sameContent(as: stamp) {
                result.encrypted = previous.encrypted
                result.plaintextSize = previous.plaintextSize
            }
        }
        node.probe.withLock { $0 = result }
        return result
    }

    func isEncrypted(_ node: Node) throws -> Bool {
        guard node.kind == .regular else { return false }
        if encrypted.openFile(node.id) != nil { return true }
        return probe(node, try Sys.fstat(node.handle)).encrypted
    }

    /// The attributes to reply with.
    func attributes(_ node: Node) throws -> stat {
        let st = try Sys.fstat(node.handle)
        return Self.cStat(st, size: shownSize(node, st))
    }

    static func cStat(_ st: FileStatus, size: Int64) -> stat {
        var s = stat()
        s.st_dev = __dev_t(st.device)
        s.st_ino = __ino_t(st.inode)
        s.st_mode = st.mode
        s.st_nlink = __nlink_t(st.linkCount)
        s.st_uid = st.uid
        s.st_gid = st.gid
        s.st_rdev = __dev_t(st.rawDevice)
        s.st_size = __off_t(size)
        s.st_blksize = __blksize_t(st.blockSize)
        s.st_blocks = __blkcnt_t(st.blocks)
        s.st_atim = st.accessTime
        s.st_mtim = st.modificationTime
        s.st_ctim = st.changeTime
        return s
    }

    func entry(_ node: Node, _ st: FileStatus) -> fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = node.nodeID
        e.generation = 0
        e.attr = Self.cStat(st, size: shownSize(node, st))
        e.attr_timeout = attributeTimeout
        e.entry_timeout = entryTimeout
        return e
    }

    // MARK: - Ownership

    /// Hands a new object in `parent` to the process that made it, when the daemon runs as root for other users
    /// (`allow_other`), with the owner ext4 would give it: the caller's uid, and the caller's gid unless `parent` is
    /// set-group-ID (then the object keeps the directory's group, which the backing file system gave it).
    ///
    /// chown(2) clears a file's set-user-ID and set-group-ID bits, root's chown too, so they are put back: the
    /// kernel has already dropped from the mode any bit the caller may not set. Nothing sees the object while it is
    /// root's: the kernel holds `parent` locked for the whole create, mknod, mkdir, symlink or rename request.
    func giveToCaller(_ caller: (uid: UInt32, gid: UInt32), _ handle: FileDescriptor, in parent: Node) {
        guard daemonUID == 0, caller.uid != 0 || caller.gid != 0, let before = try? Sys.fstat(handle) else { return }
        let parentIsSetGID = ((try? Sys.fstat(parent.handle))?.mode ?? 0) & CFlags.setGroupID != 0
        try? Sys.chownHandle(handle, uid: caller.uid, gid: parentIsSetGID ? UInt32.max : caller.gid)
        if before.kind == .regular, before.mode & (CFlags.setUserID | CFlags.setGroupID) != 0 {
            try? Sys.chmod(FilePath("/proc/self/fd/\(handle.rawValue)"), before.mode & 0o7777)
        }
    }

    // MARK: - Encrypted files

    /// Takes a reference to the shared handle of an encrypted file.
    func acquireEncrypted(_ node: Node, writable: Bool) throws(EFSError) -> SharedEncryptedFiles.Entry {
        let path = node.procPath, display = node.displayPath, session = session
        return try encrypted.acquire(node.id, writable: writable) { (w: Bool) throws(EFSError) -> EncryptedFile in
            try session.open(at: path, displayPath: display, writable: w, deferSizeUpdates: true)
        }
    }

    /// Runs `body` with the encrypted file of `node`: the handle of `open` if given, else a reference taken for the
    /// call.
    func withEncrypted<T>(_ node: Node, _ open: OpenFile?, writable: Bool, _ body: (EncryptedFile) throws -> T) throws -> T {
        if let open, case .encrypted(let entry) = open.kind {
            return try body(encrypted.file(entry))
        }
        let entry = try acquireEncrypted(node, writable: writable)
        defer {
            do { try encrypted.release(entry) } catch { report(error) }
        }
        return try body(encrypted.file(entry))
    }

    func report(_ error: any Error) {
        if let e = error as? EFSError { log(e.message) } else { log("\(error)") }
    }
}

/// An open file: a plain backing descriptor, or a reference to a shared encrypted handle.
final class OpenFile: Sendable {
    enum Kind: Sendable {
        case plain(FileDescriptor)
        case encrypted(SharedEncryptedFiles.Entry)
    }
    let node: Node
    let kind: Kind
    let writable: Bool
    let append: Bool

    init(node: Node, kind: Kind, writable: Bool, append: Bool) {
        self.node = node
        self.kind = kind
        self.writable = writable
        self.append = append
    }
}

/// An open directory: a snapshot of its entries, taken at the first read from offset 0.
final class OpenDirectory: Sendable {
    let node: Node
    let entries = Mutex<[DirectoryRecord]?>(nil)
    init(node: Node) { self.node = node }
}
