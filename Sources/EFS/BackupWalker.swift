// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSArchive
import EFSCore
import EFSSystem
import SystemPackage

/// The tree walk of ``EFSBackup/backup(_:to:options:issues:progress:)``: one pax entry per object, in tar order
/// (a directory, then its children by name), content streamed in bounded chunks.
struct BackupWalker {
    let out: ArchiveOutput
    let issues: (EFSBackup.Issue) -> Void
    let progress: (EFSBackup.Progress) -> Void
    var summary = EFSBackup.Summary()
    /// The archive file itself, when it is a regular file: never archived into itself.
    var archiveIdentity: FileKey?
    /// First archive name of each file with several links.
    var links: [FileKey: String] = [:]
    var userNames: [UInt32: String] = [:]
    var groupNames: [UInt32: String] = [:]
    /// Bytes read from a plain file at a time.
    static let copyChunk = 1 << 20
    /// Content bytes between two progress reports.
    static let progressInterval: UInt64 = 4 << 20
    var copyBuffer: [UInt8] = []

    init(output: ArchiveOutput, issues: @escaping (EFSBackup.Issue) -> Void, progress: @escaping (EFSBackup.Progress) -> Void) {
        out = output
        self.issues = issues
        self.progress = progress
    }

    mutating func report(_ path: String, _ error: EFSError, warning: Bool) {
        if warning {
            summary.warnings += 1
        } else {
            summary.failures += 1
            summary.lastFailure = error
        }
        issues(EFSBackup.Issue(path: path, error: error, isWarning: warning))
    }

    func tick(_ name: String) {
        progress(EFSBackup.Progress(entries: summary.entries, bytes: out.count, path: name))
    }

    static func join(_ parent: String, _ child: String) -> String { parent == "." ? child : parent + "/" + child }

    /// swift-efs's own names, never archived: directory markers (their directory carries them as a raw stream) and
    /// temporary files.
    static func isInternal(_ name: String) -> Bool { name == DirectoryMarker.name || TemporaryName.isTemporary(name) }

    // MARK: - Walk

    /// Archives `path` (and everything below it) under the archive name `name`. Throws only when the archive
    /// itself cannot be completed.
    mutating func archive(path: FilePath, name: String) throws(EFSError) {
        var stack: [(path: FilePath, name: String, device: UInt64?)] = [(path, name, nil)]
        while let (p, n, device) = stack.popLast() {
            let st: FileStatus
            do { st = try Sys.lstat(p) } catch {
                report(n, EFSError.system(error, "cannot archive", p), warning: false)
                continue
            }
            if let last = p.lastComponent?.string, Self.isInternal(last), st.kind != .directory { continue }
            if let a = archiveIdentity, a == FileKey(st) {
                report(n, EFSError(.invalidArgument, "\(n) is the archive itself: not archived"), warning: true)
                continue
            }
            let children = try entry(p, n, st, rootDevice: device ?? st.device)
            for child in children.reversed() { stack.append((p.appending(child), Self.join(n, child), device ?? st.device)) }
        }
    }

    /// Writes the entry (or entries) of one object; returns the children to walk for a directory.
    mutating func entry(_ path: FilePath, _ name: String, _ st: FileStatus, rootDevice: UInt64) throws(EFSError) -> [String] {
        switch st.kind {
        case .directory: return try directory(path, name, st, rootDevice: rootDevice)
        case .regular: try regular(path, name, st)
        case .symlink: try symlink(path, name, st)
        case .other:
            if st.isFIFO {
                if try hardLink(name, st) { break }
                try write(template(.fifo, name, st), path: name)
                links[FileKey(st)] = st.linkCount > 1 ? name : nil
            } else {
                report(name, EFSError(.notSupported, "device nodes and sockets are not archived"), warning: true)
            }
        }
        return []
    }

    mutating func directory(_ path: FilePath, _ name: String, _ st: FileStatus, rootDevice: UInt64) throws(EFSError) -> [String] {
        let fd: FileDescriptor
        do { fd = try Sys.open(path, [.readOnly, .directory, .noFollow]) } catch {
            report(name, EFSError.system(error, "cannot archive", path), warning: false)
            return []
        }
        defer { Sys.close(fd) }
        var entry = template(.directory, name, st)
        entry.extendedAttributes = extendedAttributes(fd, name, raw: false)
        // An encrypted directory: its raw stream (the marker's metadata and named streams) follows its entry.
        var raw: (RawContext, FileStatus)?
        let marker = path.appending(DirectoryMarker.name)
        if let mst = try? Sys.lstat(marker), mst.kind == .regular {
            do {
                raw = (try RawContext.open(path, flags: [.createForDirectory]), mst)
            } catch where error.code == .notEncrypted {
                report(name, EFSError(.corrupt, "its \(DirectoryMarker.name) is not a directory marker: left out"), warning: true)
            } catch {
                report(name, EFSError(error.code, "cannot archive its encryption: \(error.message)", cause: error), warning: false)
            }
        }
        defer { raw?.0.close() }
        try write(entry, path: name)
        if let (ctx, mst) = raw {
            var e = template(.regular, Self.join(name, DirectoryMarker.name), mst)
            e.efsRaw = .directory
            try writeRaw(ctx, e)
        }
        if st.device != rootDevice {
            report(name, EFSError(.notSupported, "on another file system: its contents are not archived"), warning: true)
            return []
        }
        do {
            return try Sys.listDirectory(path).map(\.name).filter { !Self.isInternal($0) }
        } catch {
            report(name, EFSError.system(error, "cannot list", path), warning: false)
            return []
        }
    }

    mutating func regular(_ path: FilePath, _ name: String, _ st: FileStatus) throws(EFSError) {
        if try hardLink(name, st) { return }
        let fd: FileDescriptor
        do { fd = try Sys.open(path, [.readOnly, .noFollow]) } catch {
            report(name, EFSError.system(error, "cannot archive", path), warning: false)
            return
        }
        var closed = false
        defer { if !closed { Sys.close(fd) } }
        guard let now = try? Sys.fstat(fd), FileKey(now) == FileKey(st), now.kind == .regular else {
            report(name, EFSError(.sharingViolation, "changed while it was being archived: left out"), warning: false)
            return
        }
        // The first chunk tells an encrypted file (by its magic) and, for a plain one, is its first content.
        let first: [UInt8]
        do { first = try Sys.pread(fd, count: Int(min(UInt64(Self.copyChunk), UInt64(max(0, now.size)))), at: 0) } catch {
            report(name, EFSError.system(error, "cannot read", path), warning: false)
            return
        }
        if FileHeader.hasMagic(first) {
            // An encrypted file: its raw stream, with its other extended attributes as pax records (its sealed
            // `user.efs.x.*` attributes travel inside the stream as named streams).
            var e = template(.regular, name, now)
            e.extendedAttributes = extendedAttributes(fd, name, raw: true)
            e.efsRaw = .file
            Sys.close(fd)
            closed = true
            let ctx: RawContext
            do { ctx = try RawContext.open(path, flags: []) } catch {
                report(name, error, warning: false)
                return
            }
            defer { ctx.close() }
            guard try writeRaw(ctx, e) else { return }
        } else {
            var e = template(.regular, name, now)
            e.size = UInt64(now.size)
            e.extendedAttributes = extendedAttributes(fd, name, raw: false)
            guard try write(e, path: name, content: true) else { return }
            try copy(fd, size: e.size, first: first, name: name)
            if let after = try? Sys.fstat(fd), after.size != now.size || after.modificationTime.tv_sec != now.modificationTime.tv_sec
                || after.modificationTime.tv_nsec != now.modificationTime.tv_nsec
            {
                report(name, EFSError(.sharingViolation, "changed while it was being archived"), warning: true)
            }
        }
        if st.linkCount > 1 { links[FileKey(st)] = name }
    }

    mutating func symlink(_ path: FilePath, _ name: String, _ st: FileStatus) throws(EFSError) {
        if try hardLink(name, st) { return }
        let bytes: [UInt8]
        do { bytes = try Sys.readlink(path) } catch {
            report(name, EFSError.system(error, "cannot read the link", path), warning: false)
            return
        }
        guard let target = String(validating: bytes, as: UTF8.self), !target.isEmpty else {
            report(name, EFSError(.notSupported, "the link's target is not UTF-8: left out"), warning: false)
            return
        }
        var e = template(.symbolicLink, name, st)
        e.linkTarget = target
        guard try write(e, path: name) else { return }
        if st.linkCount > 1 { links[FileKey(st)] = name }
    }

    /// Writes a hard link entry if this file was archived before under another name.
    mutating func hardLink(_ name: String, _ st: FileStatus) throws(EFSError) -> Bool {
        guard st.linkCount > 1, let first = links[FileKey(st)] else { return false }
        var e = template(.hardLink, name, st)
        e.linkTarget = first
        _ = try write(e, path: name)
        return true
    }

    // MARK: - Entries

    mutating func template(_ kind: ArchiveEntry.Kind, _ name: String, _ st: FileStatus) -> ArchiveEntry {
        ArchiveEntry(
            kind: kind, path: name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, userName: userName(st.uid),
            groupName: groupName(st.gid), modificationTime: st.archiveModificationTime, accessTime: st.archiveAccessTime)
    }

    mutating func userName(_ uid: UInt32) -> String {
        if let n = userNames[uid] { return n }
        let n = Sys.userName(forUserID: uid) ?? ""
        userNames[uid] = n
        return n
    }

    mutating func groupName(_ gid: UInt32) -> String {
        if let n = groupNames[gid] { return n }
        let n = Sys.groupName(forGroupID: gid) ?? ""
        groupNames[gid] = n
        return n
    }

    /// Writes a header, and counts the entry unless `content` follows (the caller counts it after the content).
    /// Returns false if the entry could not be encoded (reported; nothing written).
    @discardableResult
    mutating func write(_ e: ArchiveEntry, path: String, content: Bool = false) throws(EFSError) -> Bool {
        let header: [UInt8]
        do { header = try ArchiveWriter.header(for: e) } catch {
            report(path, EFSError(error.code == .limitExceeded ? .notSupported : .invalidArgument, "cannot archive: \(error.message)", cause: error), warning: false)
            return false
        }
        try out.write(header)
        if !content {
            summary.entries += 1
            tick(path)
        }
        return true
    }

    /// Streams a plain file's `size` bytes, starting with `first` (already read from offset 0). A file that shrank
    /// is padded with zeros (and reported), as tar does; one that grew is cut at `size`.
    mutating func copy(_ fd: FileDescriptor, size: UInt64, first: [UInt8], name: String) throws(EFSError) {
        var done = min(UInt64(first.count), size)
        try out.write(first[0..<Int(done)])
        // A first read shorter than asked for means the end of the file was reached.
        var atEnd = first.count < Self.copyChunk
        var sinceTick: UInt64 = 0
        if done < size, !atEnd, copyBuffer.count != Self.copyChunk { copyBuffer = [UInt8](repeating: 0, count: Self.copyChunk) }
        while done < size, !atEnd {
            let n: Int
            do { n = try Sys.preadInto(fd, &copyBuffer, at: Int64(done)) } catch {
                report(name, EFSError.system(error, "read error: the rest of the file is archived as zeros"), warning: false)
                break
            }
            if n == 0 {
                atEnd = true
                break
            }
            let take = Int(min(UInt64(n), size - done))
            try out.write(copyBuffer[0..<take])
            done += UInt64(take)
            sinceTick += UInt64(take)
            if sinceTick >= Self.progressInterval {
                sinceTick = 0
                tick(name)
            }
        }
        if done < size, atEnd {
            report(name, EFSError(.sharingViolation, "the file shrank while it was being archived: padded with zeros"), warning: true)
        }
        var left = size - done
        while left > 0 {
            let n = Int(min(left, UInt64(Self.copyChunk)))
            try out.write([UInt8](repeating: 0, count: n))
            left -= UInt64(n)
        }
        try out.write(ArchiveWriter.padding(afterContentOfSize: size))
        summary.entries += 1
        tick(name)
    }

    /// Writes a raw-stream entry: the header with the exact stream length, then the stream. Returns false when the
    /// entry was left out before anything was written.
    @discardableResult
    mutating func writeRaw(_ ctx: RawContext, _ template: ArchiveEntry) throws(EFSError) -> Bool {
        var e = template
        do { e.size = try ctx.streamLength() } catch {
            report(e.path, error, warning: false)
            return false
        }
        guard try write(e, path: e.path, content: true) else { return false }
        let length = e.size
        var written: UInt64 = 0
        var sinceTick: UInt64 = 0
        let out = self.out
        let name = e.path
        let progress = self.progress
        let entries = summary.entries
        do {
            try ctx.read { chunk in
                guard written + UInt64(chunk.count) <= length else {
                    throw EFSError(.ioError, "\(name): the raw stream is longer than announced")
                }
                try out.write(chunk)
                written += UInt64(chunk.count)
                sinceTick += UInt64(chunk.count)
                if sinceTick >= Self.progressInterval {
                    sinceTick = 0
                    progress(EFSBackup.Progress(entries: entries, bytes: out.count, path: name))
                }
            }
        } catch {
            // The header promised `length` bytes: the archive cannot go on.
            if let inner = error.cause as? EFSError { throw inner }
            throw EFSError(error.code, "\(name): the raw export failed after its header was written: \(error.message)", cause: error)
        }
        guard written == length else {
            throw EFSError(.ioError, "\(name): the raw stream is \(written) bytes, not the \(length) announced; the archive is incomplete")
        }
        try out.write(ArchiveWriter.padding(afterContentOfSize: length))
        summary.entries += 1
        summary.rawStreams += 1
        tick(name)
        return true
    }

    /// The extended attributes to archive with an entry. For an encrypted file (`raw`), its sealed
    /// `user.efs.x.*` attributes are left out: the raw stream carries them.
    mutating func extendedAttributes(_ fd: FileDescriptor, _ name: String, raw: Bool) -> [ExtendedAttribute] {
        guard let names = try? Sys.listXattrs(fd) else { return [] }
        var out: [ExtendedAttribute] = []
        for n in names.sorted() {
            if raw && n.hasPrefix(NamedStreams.backingPrefix) { continue }
            guard let value = try? Sys.getXattr(fd, n) else { continue }
            guard !n.contains("="), !n.isEmpty, n.utf8.count <= ArchiveLimits.maximumExtendedAttributeNameLength,
                value.count <= ArchiveLimits.maximumExtendedAttributeValueSize,
                out.count < ArchiveLimits.maximumExtendedAttributeCount
            else {
                report(name, EFSError(.notSupported, "extended attribute '\(n)' cannot be archived: left out"), warning: true)
                continue
            }
            out.append(ExtendedAttribute(name: n, value: value))
        }
        return out
    }
}
