// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import CFUSE
import EFS
import EFSSystem
import SystemPackage

/// The operations. Each one replies on success and throws on failure; the glue replies with the mapped errno.
extension EFSFileSystem {
    typealias Request = fuse_req_t?

    func caller(_ req: Request) -> (uid: UInt32, gid: UInt32) {
        guard let c = fuse_req_ctx(req) else { return (0, 0) }
        return (c.pointee.uid, c.pointee.gid)
    }

    func replyEntry(_ req: Request, _ node: Node, _ st: FileStatus) {
        var e = entry(node, st)
        fuse_reply_entry(req, &e)
    }

    /// Looks up a name just created and replies with its entry (one kernel lookup).
    func replyNewEntry(_ req: Request, _ parent: Node, _ name: String) throws {
        let (node, st) = try lookup(parent, name)
        replyEntry(req, node, st)
    }

    // MARK: - Names and attributes

    func lookup(_ req: Request, _ parent: UInt64, _ name: String) throws {
        let (node, st) = try lookup(try nodes.node(parent), name)
        replyEntry(req, node, st)
    }

    func getattr(_ req: Request, _ ino: UInt64) throws {
        var s = try attributes(try nodes.node(ino))
        fuse_reply_attr(req, &s, attributeTimeout)
    }

    func setattr(_ req: Request, _ ino: UInt64, _ attr: stat, _ toSet: Int32, _ open: OpenFile?) throws {
        let node = try nodes.node(ino)
        if toSet & FUSE_SET_ATTR_MODE != 0 {
            try Sys.chmod(node.procPath, attr.st_mode & 0o7777)
        }
        if toSet & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) != 0 {
            try Sys.chownHandle(node.handle, uid: toSet & FUSE_SET_ATTR_UID != 0 ? attr.st_uid : UInt32.max,
                                gid: toSet & FUSE_SET_ATTR_GID != 0 ? attr.st_gid : UInt32.max)
        }
        if toSet & FUSE_SET_ATTR_SIZE != 0 {
            let size = Int64(attr.st_size)
            guard size >= 0 else { throw Errno.invalidArgument }
            if let open, case .plain(let fd) = open.kind {
                try Sys.ftruncate(fd, size)
            } else if try isEncrypted(node) {
                try checkKeyUser(req, node, encrypted: true)
                try checkPlaintextEnd(UInt64(size))
                try withEncrypted(node, open, writable: true) { try $0.truncate(to: UInt64(size)) }
            } else {
                let fd = try Sys.open(node.procPath, .writeOnly)
                defer { Sys.close(fd) }
                try Sys.ftruncate(fd, size)
            }
        }
        let timeBits = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW
        if toSet & timeBits != 0 {
            // A deferred size record written later would move the modification time: write it first.
            // (flush, not sync: the record only has to be written, not made durable; tar does this per file.)
            if node.kind == .regular, let f = encrypted.openFile(node.id), f.writable { try f.flush() }
            func time(_ set: Int32, _ now: Int32, _ value: timespec) -> timespec {
                toSet & now != 0 ? Sys.timeNow : toSet & set != 0 ? value : Sys.timeOmit
            }
            try Sys.utimens(node.procPath, access: time(FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, attr.st_atim),
                            modification: time(FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, attr.st_mtim))
        }
        var s = try attributes(node)
        fuse_reply_attr(req, &s, attributeTimeout)
    }

    func readlink(_ req: Request, _ ino: UInt64) throws {
        let node = try nodes.node(ino)
        var target = try Sys.readlinkat(node.handle, "")
        target.append(0)
        target.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { _ = fuse_reply_readlink(req, $0.baseAddress) }
        }
    }

    // MARK: - Creating and removing names

    func mknod(_ req: Request, _ parentID: UInt64, _ name: String, _ mode: UInt32, _ device: UInt64) throws {
        let parent = try nodes.node(parentID)
        try checkCreatable(parent, name)
        let who = caller(req)
        if mode & CFlags.fileTypeMask == CFlags.regular {
            let encryptedParent = session.isEncryptedDirectory(parent.procPath)
            try checkKeyUser(req, parent, encrypted: encryptedParent)
            let made = try createFile(parent, name, encrypted: encryptedParent, mode: mode & 0o7777)
            switch made {
            case .plain(let fd): Sys.close(fd)
            case .encrypted(let file): try file.close()
            }
        } else {
            try Sys.mknodat(parent.handle, name, mode: mode, device: device)
        }
        let (node, _) = try lookup(parent, name)
        giveToCaller(who, node.handle, in: parent)
        replyEntry(req, node, try Sys.fstat(node.handle))
    }

    func mkdir(_ req: Request, _ parentID: UInt64, _ name: String, _ mode: UInt32) throws {
        let parent = try nodes.node(parentID)
        try checkCreatable(parent, name)
        // A directory made in an encrypted directory is encrypted too (as on Windows), so that the files a copy puts
        // in it are encrypted. It is made and marked under a temporary name, then renamed into place: a crash never
        // leaves it there unmarked (the litter is hidden, and efs fsck --repair removes it).
        if session.isEncryptedDirectory(parent.procPath) {
            let temporary = TemporaryName.name(for: name)
            try Sys.mkdirat(parent.handle, temporary, mode: mode & 0o7777)
            do {
                try markEncrypted(parent, temporary, mode: mode & 0o7777)
                try renameNoReplace(parent, temporary, name)
            } catch {
                if let dir = try? Sys.openat(parent.handle, temporary, [.pathOnly, .directory, .noFollow]) {
                    try? Sys.unlinkat(dir, DirectoryMarker.name)
                    Sys.close(dir)
                }
                try? Sys.unlinkat(parent.handle, temporary, directory: true)
                throw error
            }
        } else {
            try Sys.mkdirat(parent.handle, name, mode: mode & 0o7777)
        }
        let (node, _) = try lookup(parent, name)
        giveToCaller(caller(req), node.handle, in: parent)
        replyEntry(req, node, try Sys.fstat(node.handle))
    }

    /// Renames `from` to `to` in `parent`, failing with EEXIST if `to` exists (where the file system has no
    /// RENAME_NOREPLACE, as some network file systems: a check, then a plain rename).
    private func renameNoReplace(_ parent: Node, _ from: String, _ to: String) throws(Errno) {
        do { try Sys.renameat2(parent.handle, from, parent.handle, to, flags: .noReplace) } catch {
            guard error == .invalidArgument || error == .noFunction else { throw error }
            if (try? Sys.lstatat(parent.handle, to)) != nil { throw Errno.fileExists }
            try Sys.renameat(parent.handle, from, parent.handle, to)
        }
    }

    /// Writes the directory marker of a new directory, making it writable for the moment if its mode does not let
    /// the daemon write it.
    private func markEncrypted(_ parent: Node, _ name: String, mode: UInt32) throws {
        let path = parent.procPath(name)
        let first: EFSError
        do { return try session.markNewDirectoryEncrypted(at: path, volume: volume) } catch { first = error }
        guard first.code == .readOnly || first.code == .accessDenied else { throw first }
        try Sys.chmod(path, mode | 0o700)
        defer { try? Sys.chmod(path, mode) }
        try session.markNewDirectoryEncrypted(at: path, volume: volume)
    }

    func symlink(_ req: Request, _ target: String, _ parentID: UInt64, _ name: String) throws {
        let parent = try nodes.node(parentID)
        try checkCreatable(parent, name)
        try Sys.symlinkat(target, parent.handle, name)
        let (node, _) = try lookup(parent, name)
        giveToCaller(caller(req), node.handle, in: parent)
        replyEntry(req, node, try Sys.fstat(node.handle))
    }

    func link(_ req: Request, _ ino: UInt64, _ parentID: UInt64, _ name: String) throws {
        let node = try nodes.node(ino)
        let parent = try nodes.node(parentID)
        try checkCreatable(parent, name)
        try Sys.linkFollowing(node.procPath, parent.handle, name)
        try replyNewEntry(req, parent, name)
    }

    func unlink(_ req: Request, _ parentID: UInt64, _ name: String) throws {
        let parent = try nodes.node(parentID)
        try checkVisible(parent, name)
        try Sys.unlinkat(parent.handle, name)
        fuse_reply_err(req, 0)
    }

    func rmdir(_ req: Request, _ parentID: UInt64, _ name: String) throws {
        let parent = try nodes.node(parentID)
        try checkVisible(parent, name)
        try withMarkerSetAside(parent, name, renaming: false) { () throws(Errno) in try Sys.unlinkat(parent.handle, name, directory: true) }
        fuse_reply_err(req, 0)
    }

    func rename(_ req: Request, _ parentID: UInt64, _ name: String, _ newParentID: UInt64, _ newName: String, _ flags: UInt32) throws {
        let parent = try nodes.node(parentID)
        let newParent = try nodes.node(newParentID)
        try checkVisible(parent, name)
        try checkCreatable(newParent, newName)
        guard flags & ~(CFlags.renameNoReplace | CFlags.renameExchange | CFlags.renameWhiteout) == 0 else {
            throw Errno.invalidArgument
        }
        let rf = RenameFlags(rawValue: flags)
        try withMarkerSetAside(newParent, newName, renaming: true) { () throws(Errno) in
            try Sys.renameat2(parent.handle, name, newParent.handle, newName, flags: rf)
        }
        if rf.contains(.whiteout), let w = try? Sys.openat(parent.handle, name, [.pathOnly, .noFollow]) {
            giveToCaller(caller(req), w, in: parent)
            Sys.close(w)
        }
        if let st = try? Sys.statAt(newParent.handle, newName, followSymlinks: false) {
            nodes.rename(BackingID(st), display: newParent.displayPath(newName).string, parent: newParentID, name: newName)
        }
        fuse_reply_err(req, 0)
    }

    /// Runs `body` (an rmdir of, or a rename onto, `parent/name`). If it fails with ENOTEMPTY because the directory
    /// holds nothing but its (hidden) encryption marker, removes that directory in steps no crash can leave half
    /// done in view, running `body` again in the middle where it is a rename (`renaming`):
    ///
    /// 1. the directory leaves the view whole, marker and all, under a temporary name;
    /// 2. a rename takes the name (if it fails, the directory comes back);
    /// 3. the marker moves out beside it, under a second temporary name, and the directory is removed (for an rmdir,
    ///    if that fails, the marker and the directory go back);
    /// 4. the marker goes.
    ///
    /// A crash at any point leaves the name as it was or as the call leaves it, and at most temporary litter, which
    /// is hidden and which efs fsck --repair removes. (Moving the marker out in place, as this once did, could leave
    /// a visible directory without it, whose new files would be plaintext.) The kernel holds the directory's lock
    /// for the whole rmdir or rename, so nothing is made in it between the listing and the steps.
    private func withMarkerSetAside(_ parent: Node, _ name: String, renaming: Bool, _ body: () throws(Errno) -> Void) throws(Errno) {
        do { return try body() } catch where error == .directoryNotEmpty {
            guard let dir = try? Sys.openat(parent.handle, name, [.pathOnly, .noFollow, .directory]) else { throw error }
            defer { Sys.close(dir) }
            // Listing the directory and moving its marker out need read, write and search permission on it, which
            // its mode may deny a daemon that is not root (ext4's rmdir needs none of them): lend them to the owner
            // for the moment. (If the directory goes, the chmod back reaches a removed inode, which is harmless.)
            let path = FilePath("/proc/self/fd/\(dir.rawValue)")
            let mode = ((try? Sys.fstat(dir))?.mode ?? 0o700) & 0o7777
            let lend = daemonUID != 0 && mode & 0o700 != 0o700 && (try? Sys.chmod(path, mode | 0o700)) != nil
            defer { if lend { try? Sys.chmod(path, mode) } }
            let names = ((try? Sys.readDirectory(dir)) ?? []).map(\.name).filter { $0 != "." && $0 != ".." }
            guard names == [DirectoryMarker.name] else { throw error }
            let hidden = TemporaryName.name(for: name)
            try renameNoReplace(parent, name, hidden)
            let putBack = { () in _ = try? self.renameNoReplace(parent, hidden, name) }
            if renaming {
                do { try body() } catch {
                    putBack()
                    throw error
                }
            }
            // Fresh random names on both ends (the marker's own name is free in the emptied, hidden directory), so
            // plain renames: no RENAME_NOREPLACE, which some network file systems lack.
            let aside = TemporaryName.name(for: DirectoryMarker.name)
            do throws(Errno) {
                try Sys.renameat(dir, DirectoryMarker.name, parent.handle, aside)
                do throws(Errno) { try Sys.unlinkat(parent.handle, hidden, directory: true) } catch {
                    try? Sys.renameat(parent.handle, aside, dir, DirectoryMarker.name)
                    throw error
                }
            } catch {
                // An rmdir fails whole. After a rename, which has happened, the old directory stays behind as
                // hidden litter.
                guard renaming else {
                    putBack()
                    throw error
                }
                return
            }
            try? Sys.unlinkat(parent.handle, aside)
        }
    }

    // MARK: - Files

    enum Created {
        case plain(FileDescriptor)
        case encrypted(EncryptedFile)
    }

    /// Creates `parent/name`: encrypted when `encrypted` (the parent is a directory marked encrypted), plain
    /// otherwise. Throws EEXIST if it exists.
    func createFile(_ parent: Node, _ name: String, encrypted: Bool, mode: UInt32, flags: Int32 = 0) throws -> Created {
        if encrypted {
            // The handle is opened for writing, which a mode without u+rw refuses a daemon that is not root; open(2)
            // with O_CREAT returns a writable descriptor whatever the mode, so make it u+rw and give it its mode once
            // it is open.
            let path = parent.procPath(name)
            let file = try session.createEncryptedFile(at: path, displayPath: parent.displayPath(name), mode: mode | 0o600, volume: volume)
            if mode & 0o600 != 0o600 {
                do { try Sys.chmod(path, mode) } catch {
                    try? file.close()
                    try? Sys.unlinkat(parent.handle, name)
                    throw error
                }
            }
            return .encrypted(file)
        }
        let access = flags & CFlags.accessModeMask == CFlags.readOnly ? OpenFlags.readWrite : OpenFlags(rawValue: flags & CFlags.accessModeMask)
        let extra = OpenFlags(rawValue: flags & CFlags.append)
        return .plain(try Sys.openat(parent.handle, name, [access, extra, .create, .exclusive, .noFollow],
                                     mode: FilePermissions(rawValue: CModeT(mode))))
    }

    func create(_ req: Request, _ parentID: UInt64, _ name: String, _ mode: UInt32, _ fi: UnsafeMutablePointer<fuse_file_info>) throws {
        let parent = try nodes.node(parentID)
        try checkCreatable(parent, name)
        let encryptedParent = session.isEncryptedDirectory(parent.procPath)
        try checkKeyUser(req, parent, encrypted: encryptedParent)
        let flags = fi.pointee.flags
        let made: Created
        do { made = try createFile(parent, name, encrypted: encryptedParent, mode: mode & 0o7777, flags: flags) } catch {
            // It exists: without O_EXCL this is an open of the existing file.
            guard FUSEErrno.code(for: error) == Errno.fileExists.rawValue, flags & CFlags.exclusive == 0 else { throw error }
            let killSetID = takeKillSetIDRequest(parentID)
            let (node, _) = try lookup(parent, name)
            do {
                if killSetID { try killSetIDBits(node) }
                try checkKeyUser(req, node, encrypted: node.kind == .regular && (try isEncrypted(node)))
                let open = try openNode(node, flags: flags)
                fi.pointee.fh = retain(open)
                var e = entry(node, try Sys.fstat(node.handle))
                if fuse_reply_create(req, &e, fi) != 0 { releaseOpen(fi.pointee.fh) }
            } catch {
                nodes.forget(node.nodeID, 1)
                throw error
            }
            return
        }
        let node: Node
        let st: FileStatus
        do { (node, st) = try lookup(parent, name) } catch {
            if case .encrypted(let f) = made { try? f.close() }
            if case .plain(let fd) = made { Sys.close(fd) }
            throw error
        }
        giveToCaller(caller(req), node.handle, in: parent)
        let open: OpenFile
        let writable = flags & CFlags.accessModeMask != CFlags.readOnly
        switch made {
        case .plain(let fd):
            open = OpenFile(node: node, kind: .plain(fd), writable: writable, append: flags & CFlags.append != 0)
        case .encrypted(let file):
            open = OpenFile(node: node, kind: .encrypted(encrypted.adopt(node.id, file)), writable: writable,
                            append: flags & CFlags.append != 0)
        }
        fi.pointee.fh = retain(open)
        var e = entry(node, (try? Sys.fstat(node.handle)) ?? st)
        if fuse_reply_create(req, &e, fi) != 0 { releaseOpen(fi.pointee.fh) }
    }

    /// Opens `node` for a FUSE open with open(2) `flags`.
    func openNode(_ node: Node, flags: Int32) throws -> OpenFile {
        let writable = flags & CFlags.accessModeMask != CFlags.readOnly
        let append = flags & CFlags.append != 0
        guard node.kind == .regular else { throw node.kind == .directory ? Errno.isDirectory : Errno.notPermitted }
        if try isEncrypted(node) {
            // O_TRUNC truncates whatever the access mode, as on ext4 (the kernel has checked write permission).
            let truncate = flags & CFlags.truncate != 0
            let entry = try acquireEncrypted(node, writable: writable || truncate)
            if truncate {
                do { try encrypted.file(entry).truncate(to: 0) } catch {
                    try? encrypted.release(entry)
                    throw error
                }
            }
            return OpenFile(node: node, kind: .encrypted(entry), writable: writable, append: append)
        }
        let kept = flags & (CFlags.accessModeMask | CFlags.append | CFlags.truncate)
        let fd = try Sys.open(node.procPath, OpenFlags(rawValue: kept))
        return OpenFile(node: node, kind: .plain(fd), writable: writable, append: append)
    }

    /// The keys in this mount are the mounting user's. As with Windows EFS, where a file opens only for users who
    /// hold a key, another uid (root included) that reaches the mount through `allow_other` may not use them:
    /// it gets EACCES on encrypted files and a log line. Plain files follow the ordinary permission checks.
    func checkKeyUser(_ req: Request, _ node: Node, encrypted: Bool) throws {
        guard encrypted else { return }
        let uid = caller(req).uid
        guard uid == daemonUID else {
            log("efs: \(node.displayPath): uid \(uid) may not use the keys of this mount (uid \(daemonUID)); access denied")
            throw Errno.permissionDenied
        }
    }

    func open(_ req: Request, _ ino: UInt64, _ fi: UnsafeMutablePointer<fuse_file_info>) throws {
        let node = try nodes.node(ino)
        try checkKeyUser(req, node, encrypted: node.kind == .regular && (try isEncrypted(node)))
        let open = try openNode(node, flags: fi.pointee.flags)
        fi.pointee.fh = retain(open)
        if fuse_reply_open(req, fi) != 0 { releaseOpen(fi.pointee.fh) }
    }

    func read(_ req: Request, _ open: OpenFile, _ size: Int, _ offset: Int64) throws {
        switch open.kind {
        case .plain(let fd):
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
            defer { buffer.deallocate() }
            var done = 0
            while done < size {
                let n = try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<size]), at: offset + Int64(done))
                if n == 0 { break }
                done += n
            }
            fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), done)
        case .encrypted(let entry):
            guard offset >= 0 else { throw Errno.invalidArgument }
            let bytes = try encrypted.file(entry).read(at: UInt64(offset), count: size)
            bytes.withUnsafeBytes { raw in
                _ = fuse_reply_buf(req, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
            }
        }
    }

    func write(_ req: Request, _ open: OpenFile, _ data: UnsafeRawBufferPointer, _ offset: Int64) throws {
        switch open.kind {
        case .plain(let fd):
            try Sys.pwriteAll(fd, from: data, at: offset)
        case .encrypted(let entry):
            guard offset >= 0 else { throw Errno.invalidArgument }
            let file = encrypted.file(entry)
            let bytes = [UInt8](data)
            if open.append {
                try open.node.appendLock.withLock { _ in
                    try checkPlaintextEnd(file.size, plus: UInt64(bytes.count))
                    try file.write(bytes, at: file.size)
                }
            } else {
                try checkPlaintextEnd(UInt64(offset), plus: UInt64(bytes.count))
                try file.write(bytes, at: UInt64(offset))
            }
        }
        fuse_reply_write(req, data.count)
    }

    /// Refuses an encrypted file's end past the format's largest plaintext size with EFBIG, as a file system refuses
    /// one past its largest file (the library would say EINVAL).
    func checkPlaintextEnd(_ offset: UInt64, plus count: UInt64 = 0) throws(Errno) {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= Limits.maximumPlaintextSize else { throw Errno.fileTooLarge }
    }

    func flush(_ req: Request, _ open: OpenFile) throws {
        // Like close(2) on ext4: publish the size, do not wait for the disk (fsync does that).
        if open.writable, case .encrypted(let entry) = open.kind {
            try encrypted.file(entry).flush()
        }
        fuse_reply_err(req, 0)
    }

    func fsync(_ req: Request, _ open: OpenFile, dataOnly: Bool) throws {
        switch open.kind {
        case .plain(let fd): try dataOnly ? Sys.fdatasync(fd) : Sys.fsync(fd)
        case .encrypted(let entry): try encrypted.file(entry).sync()
        }
        fuse_reply_err(req, 0)
    }

    /// `fallocate(2)`. Plain files pass the call through. On encrypted files: mode 0 grows the file to cover the
    /// range (space is not reserved: the blocks are holes until written); `FALLOC_FL_KEEP_SIZE` alone is accepted
    /// and does nothing; `FALLOC_FL_PUNCH_HOLE` and `FALLOC_FL_ZERO_RANGE` make the range read as zeros. Collapse and
    /// insert ranges, which would shift encrypted blocks, are refused with `EOPNOTSUPP` (the kernel's FUSE client
    /// refuses them itself today, for plain files too, and checks offsets and lengths as for any file system).
    func fallocate(_ req: Request, _ open: OpenFile, mode: Int32, offset: Int64, length: Int64) throws {
        guard offset >= 0, length > 0 else { throw Errno.invalidArgument }
        switch open.kind {
        case .plain(let fd):
            try Sys.fallocate(fd, mode: mode, offset: offset, length: length)
        case .encrypted(let entry):
            guard open.writable else { throw Errno.badFileDescriptor }
            let keepSize: Int32 = 0x01, punch: Int32 = 0x02, zeroRange: Int32 = 0x10
            guard mode & ~(keepSize | punch | zeroRange) == 0, !(mode & punch != 0 && mode & keepSize == 0) else {
                throw Errno.notSupported
            }
            let file = encrypted.file(entry)
            try checkPlaintextEnd(UInt64(offset), plus: UInt64(length))
            let end = UInt64(offset) + UInt64(length)
            if mode & (punch | zeroRange) != 0 {
                try file.punchHole(at: UInt64(offset), count: UInt64(length))
            }
            if mode & keepSize == 0, end > file.size {
                try file.truncate(to: end)
            }
        }
        fuse_reply_err(req, 0)
    }

    func release(_ req: Request, _ fh: UInt64) {
        releaseOpen(fh)
        fuse_reply_err(req, 0)
    }

    func retain(_ open: OpenFile) -> UInt64 { UInt64(UInt(bitPattern: Unmanaged.passRetained(open).toOpaque())) }

    /// Ends an open: closes the plain descriptor or drops the shared encrypted handle (which, the last time,
    /// writes the size record and releases the EFS lock).
    func releaseOpen(_ fh: UInt64) {
        guard let p = UnsafeMutableRawPointer(bitPattern: UInt(fh)) else { return }
        let open = Unmanaged<OpenFile>.fromOpaque(p).takeRetainedValue()
        switch open.kind {
        case .plain(let fd): Sys.close(fd)
        case .encrypted(let entry):
            let file = encrypted.file(entry)
            // The size is remembered before the handle can go: RELEASE comes after close(2) has returned, so a
            // stat may already be waiting, and in between it would find neither. A flush that fails leaves it to
            // the release, which writes the size record again (and reports a failure); the reference is dropped
            // either way.
            if !file.writable || (try? file.flush()) != nil { remember(open.node, file) }
            do { try encrypted.release(entry) } catch { report(error) }
        }
    }

    /// Records the size of an encrypted file's open handle (with nothing left to write) for the stats after its
    /// last open ends, which would otherwise read the header again, or show the backing size where the daemon may
    /// not read the file (mode 0, say). While any handle stays open, stats take the size from it instead; any later
    /// change to the backing file changes its stamp and drops this.
    private func remember(_ node: Node, _ file: EncryptedFile) {
        guard let st = try? Sys.fstat(node.handle) else { return }
        node.probe.withLock { $0 = Node.Probe(stamp: Node.Stamp(st), encrypted: true, plaintextSize: Int64(file.size)) }
    }

    // MARK: - Directories

    func opendir(_ req: Request, _ ino: UInt64, _ fi: UnsafeMutablePointer<fuse_file_info>) throws {
        let node = try nodes.node(ino)
        guard node.kind == .directory else { throw Errno.notDirectory }
        fi.pointee.fh = UInt64(UInt(bitPattern: Unmanaged.passRetained(OpenDirectory(node: node)).toOpaque()))
        if fuse_reply_open(req, fi) != 0 { releasedir(fi.pointee.fh) }
    }

    func readdir(_ req: Request, _ dir: OpenDirectory, _ size: Int, _ offset: Int64) throws {
        var list = dir.entries.withLock { $0 }
        if offset == 0 || list == nil {
            let node = dir.node
            let all = try Sys.readDirectory(node.handle)
            list = all.filter { !isHidden(node, $0.name) }
            dir.entries.withLock { $0 = list }
        }
        let entries = list ?? []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        defer { buffer.deallocate() }
        var used = 0
        var index = Int(max(0, offset))
        while index < entries.count {
            let e = entries[index]
            var st = stat()
            st.st_ino = __ino_t(e.inode)
            st.st_mode = CFlags.mode(forDirectoryType: e.type)
            let need = e.name.withCString { name in
                // Invariant: `used <= size`, so the destination stays inside `buffer`.
                fuse_add_direntry(req, buffer.baseAddress!.assumingMemoryBound(to: CChar.self) + used, size - used, name, &st, off_t(index + 1))
            }
            if used + need > size { break }
            used += need
            index += 1
        }
        fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), used)
    }

    func releasedir(_ fh: UInt64) {
        guard let p = UnsafeMutableRawPointer(bitPattern: UInt(fh)) else { return }
        Unmanaged<OpenDirectory>.fromOpaque(p).release()
    }

    func statfs(_ req: Request) throws {
        let s = try Sys.fileSystemStatistics(nodes.root.handle)
        var v = statvfs()
        v.f_bsize = UInt(s.blockSize)
        v.f_frsize = UInt(s.fragmentSize)
        v.f_blocks = fsblkcnt_t(s.blocks)
        v.f_bfree = fsblkcnt_t(s.freeBlocks)
        v.f_bavail = fsblkcnt_t(s.availableBlocks)
        v.f_files = fsfilcnt_t(s.files)
        v.f_ffree = fsfilcnt_t(s.freeFiles)
        v.f_favail = fsfilcnt_t(s.availableFiles)
        v.f_namemax = UInt(s.maximumNameLength)
        fuse_reply_statfs(req, &v)
    }

    // MARK: - Extended attributes

    /// `user.*` attributes of encrypted files are stored encrypted; others pass through to the backing object.
    private func isEncryptedAttribute(_ node: Node, _ name: String) throws -> Bool {
        guard name.hasPrefix("user.") else { return false }
        return try isEncrypted(node)
    }

    /// A descriptor of the backing object for attribute calls (an `O_PATH` handle cannot do them).
    private func withAttributeDescriptor<T>(_ node: Node, _ body: (FileDescriptor) throws -> T) throws -> T {
        guard node.kind == .regular || node.kind == .directory else { throw Errno.notSupported }
        let fd = try Sys.open(node.procPath, .readOnly)
        defer { Sys.close(fd) }
        return try body(fd)
    }

    func replyAttributeValue(_ req: Request, _ value: [UInt8], _ size: Int) throws {
        if size == 0 {
            fuse_reply_xattr(req, value.count)
            return
        }
        guard value.count <= size else { throw Errno.outOfRange }
        value.withUnsafeBytes { raw in _ = fuse_reply_buf(req, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count) }
    }

    func getxattr(_ req: Request, _ ino: UInt64, _ name: String, _ size: Int) throws {
        let node = try nodes.node(ino)
        let value: [UInt8]
        if try isEncryptedAttribute(node, name) {
            try checkKeyUser(req, node, encrypted: true)
            guard let v = try withEncrypted(node, nil, writable: false, { try $0.extendedAttribute(name) }) else {
                throw Errno.noData
            }
            value = v
        } else {
            // The kernel asks for security.capability before every write, so this is one system call on the
            // handle's /proc path, not an open, fgetxattr and close.
            guard node.kind == .regular || node.kind == .directory else { throw Errno.notSupported }
            value = try Sys.getXattr(path: node.procPath, name)
        }
        try replyAttributeValue(req, value, size)
    }

    func listxattr(_ req: Request, _ ino: UInt64, _ size: Int) throws {
        let node = try nodes.node(ino)
        var names: [String]
        if node.kind == .symlink {
            names = []
        } else {
            names = try withAttributeDescriptor(node) { try Sys.listXattrs($0) }
            if try isEncrypted(node) {
                try checkKeyUser(req, node, encrypted: true)
                names = names.filter { !$0.hasPrefix("user.") }
                names += try withEncrypted(node, nil, writable: false) { try $0.listExtendedAttributes() }
            }
        }
        var bytes: [UInt8] = []
        for n in names {
            bytes += Array(n.utf8)
            bytes.append(0)
        }
        try replyAttributeValue(req, bytes, size)
    }

    func setxattr(_ req: Request, _ ino: UInt64, _ name: String, _ value: [UInt8], _ flags: Int32) throws {
        let node = try nodes.node(ino)
        if try isEncryptedAttribute(node, name) {
            try checkKeyUser(req, node, encrypted: true)
            try withEncrypted(node, nil, writable: true) { file in
                let exists = try file.extendedAttribute(name) != nil
                if flags & CFlags.xattrCreate != 0 && exists { throw Errno.fileExists }
                if flags & CFlags.xattrReplace != 0 && !exists { throw Errno.noData }
                try file.setExtendedAttribute(name, value)
            }
        } else {
            try withAttributeDescriptor(node) { try Sys.setXattr($0, name, value, flags: flags) }
        }
        fuse_reply_err(req, 0)
    }

    func removexattr(_ req: Request, _ ino: UInt64, _ name: String) throws {
        let node = try nodes.node(ino)
        if try isEncryptedAttribute(node, name) {
            try checkKeyUser(req, node, encrypted: true)
            let removed = try withEncrypted(node, nil, writable: true) { try $0.removeExtendedAttribute(name) }
            if !removed { throw Errno.noData }
        } else {
            try withAttributeDescriptor(node) { try Sys.removeXattr($0, name) }
        }
        fuse_reply_err(req, 0)
    }
}
