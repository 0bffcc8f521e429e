// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// One entry of `QueryUsersOnEncryptedFile` / `QueryRecoveryAgentsOnEncryptedFile`: the Windows
/// `ENCRYPTION_CERTIFICATE_HASH` (hash, display information) plus the certificate itself.
public struct CertificateHash: Sendable, Hashable {
    public var thumbprint: Thumbprint
    public var displayName: String
    public var certificateDER: [UInt8]
    public var algorithm: WrapAlgorithm
}

/// What ``EFSSession/rekey(at:recursive:)`` did to one file.
public struct RekeyResult: Sendable {
    public enum Outcome: Sendable, Equatable { case updated, unchanged, skipped(String) }
    public var path: FilePath
    public var outcome: Outcome
}

extension EFSSession {
    /// Opens the backing file that holds `path`'s EFS metadata: the file itself, or a directory's marker.
    func metadataFile(_ path: FilePath, writable: Bool) throws(EFSError) -> (FilePath, FileDescriptor) {
        let st: FileStatus
        do { st = try Sys.stat(path) } catch { throw EFSError.system(error, "cannot open", path) }
        let target = st.kind == .directory ? path.appending(DirectoryMarker.name) : path
        if st.kind == .directory, !FileIO.exists(target) { throw EFSError(.notEncrypted, "\(path) is not encrypted") }
        let fd: FileDescriptor
        do { fd = try Sys.open(target, writable ? .readWrite : .readOnly) } catch { throw EFSError.system(error, "cannot open", path) }
        guard EncryptedFileInfo.hasMagic(fd) else {
            Sys.close(fd)
            throw EFSError(.notEncrypted, "\(path) is not encrypted")
        }
        return (target, fd)
    }

    /// `QueryUsersOnEncryptedFile`: the DDF entries. Needs no key.
    public func queryUsers(at path: FilePath) throws(EFSError) -> [CertificateHash] {
        try queryEntries(path).users
    }

    /// `QueryRecoveryAgentsOnEncryptedFile`: the DRF entries (possibly none). Needs no key.
    public func queryRecoveryAgents(at path: FilePath) throws(EFSError) -> [CertificateHash] {
        try queryEntries(path).agents
    }

    func queryEntries(_ path: FilePath) throws(EFSError) -> (users: [CertificateHash], agents: [CertificateHash]) {
        let (target, fd) = try metadataFile(path, writable: false)
        defer { Sys.close(fd) }
        let info = try EncryptedFileInfo.read(fd, path: target)
        func map(_ e: KeyEntry) -> CertificateHash {
            CertificateHash(thumbprint: e.thumbprint, displayName: e.displayName, certificateDER: e.certificateDER, algorithm: e.algorithm)
        }
        return (info.metadata.users.map(map), info.metadata.recoveryAgents.map(map))
    }

    /// `AddUsersToEncryptedFile`: wraps the file's FEK for more certificates. Needs one of the caller's keys on the
    /// file. Certificates already present are left as they are. Only the metadata is rewritten.
    public func addUsers(at path: FilePath, certificates: [EFSCertificate]) throws(EFSError) {
        try updateKeyLists(path) { (meta: inout FileMetadata, fek: FileEncryptionKey) throws(EFSError) in
            let present = Set(meta.users.map(\.thumbprint))
            var seen = Set<Thumbprint>()
            for cert in certificates where !present.contains(cert.thumbprint) && seen.insert(cert.thumbprint).inserted {
                meta.users.append(try wrap(cert, fek))
            }
            guard meta.users.count <= Limits.maximumEntriesPerList else {
                throw EFSError(.invalidArgument, "a file can have at most \(Limits.maximumEntriesPerList) users")
            }
        }
    }

    /// `RemoveUsersFromEncryptedFile`: removes DDF entries by thumbprint. Unknown thumbprints are ignored; removing
    /// every user fails with ``EFSError/Code/lastUser``. Needs one of the caller's keys on the file.
    public func removeUsers(at path: FilePath, thumbprints: [Thumbprint]) throws(EFSError) {
        try updateKeyLists(path) { (meta: inout FileMetadata, _: FileEncryptionKey) throws(EFSError) in
            let remove = Set(thumbprints)
            let kept = meta.users.filter { !remove.contains($0.thumbprint) }
            guard !kept.isEmpty else {
                throw EFSError(.lastUser, "cannot remove every user of \(path): a file needs at least one user (decrypt it instead)")
            }
            meta.users = kept
        }
    }

    /// Like `cipher /u`: brings a file's key lists up to date. Entries for the caller's older keys are replaced by
    /// the current key, and the recovery agents are set to the volume's current recovery policy.
    public func rekey(at path: FilePath, recursive: Bool) throws(EFSError) -> [RekeyResult] {
        var results: [RekeyResult] = []
        let own = try ownThumbprints()
        let current = try currentCertificate()
        try walk(path, recursive: recursive) { (file: FilePath) throws(EFSError) in
            do throws(EFSError) {
                let volume = try Volume.find(containing: file, includeSelf: false)
                var changed = false
                try updateKeyLists(file) { (meta: inout FileMetadata, fek: FileEncryptionKey) throws(EFSError) in
                    // Only the caller's own user entries move to the current key; a caller who opens the file as a
                    // recovery agent only is not added as a user.
                    var users: [KeyEntry] = []
                    var mine = false
                    for e in meta.users {
                        if own.contains(e.thumbprint) {
                            if !mine { users.append(e.thumbprint == current.thumbprint ? e : try wrap(current, fek)) }
                            mine = true
                        } else {
                            users.append(e)
                        }
                    }
                    if mine, !users.contains(where: { $0.thumbprint == current.thumbprint }) {
                        users.append(try wrap(current, fek))
                    }
                    users = users.reduce(into: [KeyEntry]()) { acc, e in
                        if !acc.contains(where: { $0.thumbprint == e.thumbprint }) { acc.append(e) }
                    }
                    var agents = meta.recoveryAgents
                    if let volume {
                        let old = Dictionary(meta.recoveryAgents.map { ($0.thumbprint, $0) }, uniquingKeysWith: { a, _ in a })
                        agents = []
                        for c in volume.recoveryAgents {
                            if let e = old[c.thumbprint] { agents.append(e) } else { agents.append(try wrap(c, fek)) }
                        }
                    }
                    if users != meta.users || agents != meta.recoveryAgents {
                        meta.users = users
                        meta.recoveryAgents = agents
                        changed = true
                    }
                }
                results.append(RekeyResult(path: file, outcome: changed ? .updated : .unchanged))
            } catch {
                guard error.code == .noKey || error.code == .notEncrypted else { throw error }
                results.append(RekeyResult(path: file, outcome: .skipped(error.message)))
            }
        }
        return results
    }

    private func wrap(_ c: EFSCertificate, _ fek: FileEncryptionKey) throws(EFSError) -> KeyEntry {
        do { return try wrapping.wrap(fek, for: c) } catch { throw EFSError(.notSupported, "cannot wrap for \(c.displayName): \(error.message)", cause: error) }
    }

    /// Visits every encrypted file (and marked directory) at or below `path`.
    func walk(_ path: FilePath, recursive: Bool, _ visit: (FilePath) throws(EFSError) -> Void) throws(EFSError) {
        let st: FileStatus
        do { st = try Sys.lstat(path) } catch { throw EFSError.system(error, "cannot open", path) }
        switch st.kind {
        case .regular:
            let name = path.lastComponent?.string ?? ""
            if name == DirectoryMarker.name || TemporaryName.isTemporary(name) { return }
            guard let fd = try? Sys.open(path, .readOnly) else { return }
            let enc = EncryptedFileInfo.hasMagic(fd)
            Sys.close(fd)
            if enc { try visit(path) }
        case .directory:
            if isEncryptedDirectory(path) { try visit(path) }
            guard recursive else { return }
            let entries: [DirectoryEntry]
            do { entries = try Sys.listDirectory(path) } catch { throw EFSError.system(error, "cannot list", path) }
            for e in entries where !(e.isDirectory && e.name == Volume.configDirectoryName) {
                try walk(path.appending(e.name), recursive: true, visit)
            }
        case .symlink, .other:
            return
        }
    }

    /// Rewrites the key lists of `path` (a file, or a directory's marker) after `change` edits them.
    ///
    /// The new metadata goes to the inactive slot with a higher generation and is flushed; a crash leaves the old
    /// or the new key lists. If it does not fit the slot, the file is rebuilt with larger slots (the data blocks are
    /// copied as they are, not re-encrypted) and renamed into place.
    func updateKeyLists(_ path: FilePath, _ change: (inout FileMetadata, FileEncryptionKey) throws(EFSError) -> Void) throws(EFSError) {
        let (target, fd) = try metadataFile(path, writable: true)
        let original = ReplacedOriginal(fd)
        try lockExclusive(fd, path)
        let info = try EncryptedFileInfo.read(fd, path: target)
        let fek = try fileKey(for: info.metadata, path: path)
        var meta = info.metadata
        try change(&meta, fek)
        if meta == info.metadata { return }
        let body = meta.encoded(fek)
        let slotBytes = MetadataSlot.encode(body: body, generation: info.metadataGeneration + 1)
        if slotBytes.count <= info.header.slotCapacity {
            let slot = 1 - info.activeSlot
            try mapErrors(path, "cannot update the key lists") {
                // The old slot stays intact until the new one is complete and flushed; then it is cleared, so the
                // old key lists cannot be brought back by editing its unkeyed generation and checksum.
                try Sys.pwriteAll(fd, slotBytes, at: Int64(info.header.slotOffset(slot)))
                try Sys.fdatasync(fd)
                let oldLength = MetadataSlot.headerSize + info.metadataBody.count
                try Sys.pwriteAll(fd, [UInt8](repeating: 0, count: oldLength), at: Int64(info.header.slotOffset(info.activeSlot)))
                try Sys.fdatasync(fd)
            }
            return
        }
        try rebuildWithLargerSlots(target, original, info: info, slotBytes: MetadataSlot.encode(body: body, generation: 1), bodySize: body.count)
    }

    private func rebuildWithLargerSlots(_ path: FilePath, _ original: ReplacedOriginal, info: EncryptedFileInfo, slotBytes: [UInt8], bodySize: Int) throws(EFSError) {
        let st = try mapErrors(path, "cannot stat") { try Sys.fstat(original.fd) }
        let header = FileHeader(fileID: info.header.fileID, slotCapacity: FileHeader.slotCapacity(forMetadataSize: bodySize))
        try replaceAtomically(path, original: original, status: st, wipe: false) { (dst: FileDescriptor) throws(EFSError) in
            try mapErrors(path, "cannot rebuild") {
                var head = header.encoded()
                head += info.sizeRecordBytes  // size records are bound to the file id, not to the layout
                try Sys.pwriteAll(dst, head, at: 0)
                try Sys.pwriteAll(dst, slotBytes, at: Int64(header.slotOffset(0)))
                try Sys.ftruncate(dst, Int64(header.dataOffset))
                var off: Int64 = 0
                let total = Int64(info.storedDataLength)
                while off < total {
                    let chunk = try Sys.pread(original.fd, count: Int(min(Int64(4 << 20), total - off)), at: Int64(info.header.dataOffset) + off)
                    if chunk.isEmpty { break }
                    try Sys.pwriteAll(dst, chunk, at: Int64(header.dataOffset) + off)
                    off += Int64(chunk.count)
                }
            }
        }
    }

    /// `DuplicateEncryptionInfoFile`: gives `destination` the EFS metadata of `source` (same users and recovery
    /// agents, a new FEK), creating it as an empty encrypted file, or a marked directory when `source` is one.
    ///
    /// - Parameter failIfExists: `CREATE_NEW` semantics; otherwise `CREATE_ALWAYS` (an existing file is replaced).
    public func duplicateEncryptionInfo(from source: FilePath, to destination: FilePath, failIfExists: Bool, mode: UInt32 = 0o644) throws(EFSError) {
        let (target, fd) = try metadataFile(source, writable: false)
        let info: EncryptedFileInfo
        do {
            defer { Sys.close(fd) }
            info = try EncryptedFileInfo.read(fd, path: target)
            _ = try fileKey(for: info.metadata, path: source)
        }
        func certs(_ entries: [KeyEntry]) throws(EFSError) -> [EFSCertificate] {
            do { return try entries.map { e throws(FormatError) in try e.certificate() } } catch {
                throw EFSError.format(error, source)
            }
        }
        let fek = FileEncryptionKey.generate(fileID: .random())
        let meta = try metadata(users: try certs(info.metadata.users), agents: try certs(info.metadata.recoveryAgents), fek: fek)
        let srcIsDir = (try? Sys.stat(source))?.kind == .directory
        let exists = FileIO.exists(destination)
        if exists && failIfExists { throw EFSError(.alreadyExists, "\(destination) already exists") }
        if srcIsDir {
            if !exists { try mapErrors(destination, "cannot create") { try Sys.mkdir(destination, mode: 0o755) } }
            try writeNewEncryptedFile(at: destination.appending(DirectoryMarker.name), fek: fek, metadata: meta, mode: 0o644, replace: true)
        } else {
            // Replacing an existing file keeps its mode (CREATE_ALWAYS overwrites contents, not permissions).
            let keep = (try? Sys.stat(destination)).flatMap { $0.kind == .regular ? $0.mode & 0o7777 : nil }
            try writeNewEncryptedFile(at: destination, fek: fek, metadata: meta, mode: keep ?? mode, replace: !failIfExists)
        }
    }
}
