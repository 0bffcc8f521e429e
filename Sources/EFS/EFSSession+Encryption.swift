// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// Options for ``EFSSession/encryptFile(at:options:)`` and ``EFSSession/decryptFile(at:options:)``.
public struct ReplaceOptions: Sendable {
    /// After the atomic replace, overwrite the old file's blocks with zeros and flush them (like `cipher /w` for
    /// that one file). Costs a second write of the file. On copy-on-write or flash storage the old blocks may still
    /// survive; see `Documentation/threat-model.md`.
    public var wipeOld: Bool
    public init(wipeOld: Bool = false) { self.wipeOld = wipeOld }
}

extension EFSSession {
    /// `EncryptFile`: encrypts a file in place, atomically, or marks a directory so new files in it are encrypted.
    ///
    /// Already encrypted → success, nothing changes. The file's users are the caller's current key; its recovery
    /// agents are the volume's recovery policy.
    ///
    /// - Throws: `readOnly` for a read-only file, `encryptionDisallowed` where EncryptionDisable applies or for a
    ///   volume root, `notOnVolume` outside a volume, `noUserKeys` without a current key, `sharingViolation` if the
    ///   file is locked by another EFS handle.
    public func encryptFile(at path: FilePath, options: ReplaceOptions = ReplaceOptions()) throws(EFSError) {
        let status = try fileEncryptionStatus(at: path)
        switch status {
        case .encrypted: return
        case .encryptable: break
        case .readOnly: throw EFSError(.readOnly, "\(path) is read-only: make it writable first (chmod u+w)")
        case .directoryDisallowed:
            throw EFSError(.encryptionDisallowed, "encryption is disabled in the directory of \(path) (Desktop.ini [Encryption] Disable=1)")
        case .rootDirectory: throw EFSError(.encryptionDisallowed, "\(path) is a volume root, which cannot be encrypted (encrypt a directory inside it)")
        case .systemDirectory, .systemFile: throw EFSError(.encryptionDisallowed, "\(path) is a swift-efs system file")
        case .fileSystemNotSupported:
            let st = try? Sys.lstat(path)
            if st?.kind == .regular || st?.kind == .directory {
                throw EFSError(.notOnVolume, "\(path) is not on an EFS volume: run 'efs init DIR' on a directory above it")
            }
            throw EFSError(.notSupported, "\(path) is not a regular file or directory")
        case .unknown: throw EFSError(.corrupt, "\(path) starts like an encrypted file but cannot be read")
        case .userDisallowed: throw EFSError(.accessDenied, "\(path): encryption is not allowed for this user")
        }
        let p = try place(path)
        guard let volume = p.volume else { throw EFSError(.notOnVolume, "\(path) is not on an EFS volume") }
        if p.status.kind == .directory {
            try writeDirectoryMarker(path, volume: volume)
        } else {
            try encryptRegularFile(path, volume: volume, options: options)
        }
    }

    /// The DDF/DRF a new file gets: the caller's current key, and the volume's recovery agents.
    func newFileMetadata(_ volume: Volume?, fek: FileEncryptionKey) throws(EFSError) -> FileMetadata {
        let cert = try currentCertificate()
        return try metadata(users: [cert], agents: volume?.recoveryAgents ?? [], fek: fek)
    }

    /// A fresh FEK and its metadata for a new file in `volume`: for the current key and the volume's recovery agents.
    func newFileKey(_ volume: Volume?) throws(EFSError) -> (fek: FileEncryptionKey, metadata: FileMetadata) {
        let fek = FileEncryptionKey.generate(fileID: .random())
        return (fek, try newFileMetadata(volume, fek: fek))
    }

    /// The DDF and DRF of `fek` for `users` and `agents`.
    func metadata(users: [EFSCertificate], agents: [EFSCertificate], fek: FileEncryptionKey) throws(EFSError) -> FileMetadata {
        guard !users.isEmpty, users.count <= Limits.maximumEntriesPerList, agents.count <= Limits.maximumEntriesPerList else {
            throw EFSError(.invalidArgument, "a file needs 1–\(Limits.maximumEntriesPerList) users and at most \(Limits.maximumEntriesPerList) recovery agents")
        }
        guard Set(users.map(\.thumbprint)).count == users.count, Set(agents.map(\.thumbprint)).count == agents.count else {
            throw EFSError(.invalidArgument, "a certificate is listed twice")
        }
        do {
            return FileMetadata(fileID: fek.fileID, users: try users.map { c throws(FormatError) in try wrapping.wrap(fek, for: c) },
                                recoveryAgents: try agents.map { c throws(FormatError) in try wrapping.wrap(fek, for: c) })
        } catch {
            throw EFSError(.notSupported, "cannot wrap the file key: \(error.message)", cause: error)
        }
    }

    private func writeDirectoryMarker(_ dir: FilePath, volume: Volume) throws(EFSError) {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let meta = try newFileMetadata(volume, fek: fek)
        try writeNewEncryptedFile(at: dir.appending(DirectoryMarker.name), fek: fek, metadata: meta, mode: 0o644, replace: true)
    }

    /// Marks a directory the mount just made inside an encrypted directory of `volume` as encrypted (its marker,
    /// for the current key and the volume's recovery agents), with ext4's durability (no fsync).
    public func markNewDirectoryEncrypted(at dir: FilePath, volume: Volume) throws(EFSError) {
        let (fek, meta) = try newFileKey(volume)
        try writeNewEncryptedFile(at: dir.appending(DirectoryMarker.name), fek: fek, metadata: meta, mode: 0o644, replace: true,
                                  durable: false)
    }

    /// Creates an empty encrypted file at `path` atomically (temporary name, then rename).
    @discardableResult
    func writeNewEncryptedFile(at path: FilePath, fek: FileEncryptionKey, metadata: FileMetadata, mode: UInt32, replace: Bool,
                               durable: Bool = true) throws(EFSError) -> FileHeader {
        try AtomicOutput.write(path, mode: mode, replace: replace, durable: durable) { (fd) throws(EFSError) in
            try EncryptedFile.writeNewFileStructure(fd, fek: fek, metadata: metadata, path: path)
        }
    }

    private func encryptRegularFile(_ path: FilePath, volume: Volume, options: ReplaceOptions) throws(EFSError) {
        let fek = FileEncryptionKey.generate(fileID: .random())
        let meta = try newFileMetadata(volume, fek: fek)
        let original: ReplacedOriginal
        do { original = ReplacedOriginal(try Sys.open(path, [.readWrite, .noFollow])) } catch {
            throw EFSError.system(error, "cannot open", path)
        }
        let src = original.fd
        try lockExclusive(src, path)
        let st = try mapErrors(path, "cannot stat") { try Sys.fstat(src) }
        guard st.kind == .regular else { throw EFSError(.notSupported, "\(path) is not a regular file") }
        guard st.linkCount <= 1 else {
            throw EFSError(.notSupported, "\(path) has \(st.linkCount) hard links; encrypting it would split them (remove the other links first)")
        }
        if EncryptedFileInfo.hasMagic(src) { return }
        let size = UInt64(st.size)
        try replaceAtomically(path, original: original, status: st, wipe: options.wipeOld, attributes: .seal(fek)) { (dst: FileDescriptor) throws(EFSError) in
            let header = try EncryptedFile.writeNewFileStructure(dst, fek: fek, metadata: meta, path: path)
            try BlockStream.encrypt(from: src, size: size, to: dst, dataOffset: Int64(header.dataOffset), cipher: ContentCipher(fek), path: path)
            let rec = SizeRecord(generation: 2, plaintextSize: size, isSparse: false)
            try mapErrors(path, "cannot write") {
                try Sys.pwriteAll(dst, rec.encoded(fek), at: Int64(FileHeader.sizeRecordOffsets[rec.copyIndex]))
            }
            let after = try mapErrors(path, "cannot stat") { try Sys.fstat(src) }
            guard after.size == st.size, after.modificationTime.tv_sec == st.modificationTime.tv_sec,
                after.modificationTime.tv_nsec == st.modificationTime.tv_nsec
            else { throw EFSError(.sharingViolation, "\(path) changed while it was being encrypted; nothing was replaced") }
        }
    }

    /// `DecryptFile`: decrypts a file in place, atomically, or unmarks a directory. Not encrypted → success.
    public func decryptFile(at path: FilePath, options: ReplaceOptions = ReplaceOptions()) throws(EFSError) {
        let p = try place(path)
        switch p.status.kind {
        case .directory:
            let marker = path.appending(DirectoryMarker.name)
            guard FileIO.exists(marker) else { return }
            if !Sys.isWritable(path) { throw EFSError(.readOnly, "\(path) is read-only") }
            do { try Sys.unlink(marker) } catch { throw EFSError.system(error, "cannot decrypt", path) }
            FileIO.syncDirectory(path)
            return
        case .regular: break
        case .symlink, .other: throw EFSError(.notSupported, "\(path) is not a regular file or directory")
        }
        let original: ReplacedOriginal
        do { original = ReplacedOriginal(try Sys.open(path, [.readWrite, .noFollow])) } catch {
            if error == .permissionDenied || error == .readOnlyFileSystem { throw EFSError(.readOnly, "\(path) is read-only") }
            throw EFSError.system(error, "cannot open", path)
        }
        let src = original.fd
        guard EncryptedFileInfo.hasMagic(src) else { return }
        if p.status.permissions.intersection([.ownerWrite, .groupWrite, .otherWrite]).isEmpty {
            throw EFSError(.readOnly, "\(path) is read-only: make it writable first (chmod u+w)")
        }
        try lockExclusive(src, path)
        guard p.status.linkCount <= 1 else {
            throw EFSError(.notSupported, "\(path) has \(p.status.linkCount) hard links; decrypting it would split them")
        }
        let info = try EncryptedFileInfo.read(src, path: path)
        let fek = try fileKey(for: info.metadata, path: path)
        let file = try EncryptedFile(path: path, fd: src, closesDescriptor: false, writable: false, info: info, fek: fek, deferSizeUpdates: false)
        try replaceAtomically(path, original: original, status: p.status, wipe: options.wipeOld, attributes: .open(fek)) { (dst: FileDescriptor) throws(EFSError) in
            try BlockStream.decrypt(file, to: dst, path: path)
            try mapErrors(path, "cannot write") { try Sys.ftruncate(dst, Int64(file.size)) }
        }
    }

    /// Takes the EFS exclusive lock on an open file, or fails with a sharing violation.
    func lockExclusive(_ fd: FileDescriptor, _ path: FilePath) throws(EFSError) {
        let ok: Bool
        do { ok = try Sys.tryLockExclusive(fd) } catch {
            if error == .badFileDescriptor { return }  // opened read-only: the rename is still atomic
            throw EFSError.system(error, "cannot lock", path)
        }
        guard ok else { throw EFSError(.sharingViolation, "\(path) is open elsewhere (mounted or being exported)") }
    }

    /// The open file an in-place replacement replaces, which ``replaceAtomically(_:original:status:wipe:attributes:_:)``
    /// may have to close before its rename: a server with Windows share modes (SMB) refuses to rename over a file
    /// that is open (EBUSY). Closed once, at the latest when released.
    final class ReplacedOriginal {
        let fd: FileDescriptor
        private(set) var isOpen = true
        init(_ fd: FileDescriptor) { self.fd = fd }
        func close() {
            guard isOpen else { return }
            isOpen = false
            Sys.close(fd)
        }
        deinit { close() }
    }

    /// Builds the replacement in a temporary file beside `path`, copies ownership, mode, times and extended
    /// attributes, fsyncs it and renames it over `path`. A crash at any point leaves the old file or the new one.
    ///
    /// If the rename fails with EBUSY (SMB will not replace an open file), the original is wiped if asked, closed
    /// (which drops its EFS lock: on such a file system the lock is this machine's only anyway) and the rename
    /// tried once more.
    func replaceAtomically(_ path: FilePath, original: ReplacedOriginal, status st: FileStatus, wipe: Bool,
                           attributes: XattrTransform = .copy,
                           _ fill: (FileDescriptor) throws(EFSError) -> Void) throws(EFSError) {
        let tmp = TemporaryName.beside(path)
        let dst: FileDescriptor
        do { dst = try Sys.open(tmp, [.readWrite, .create, .exclusive], mode: [.ownerReadWrite]) } catch {
            throw EFSError.system(error, "cannot create a temporary file beside", path)
        }
        var renamed = false
        defer {
            Sys.close(dst)
            if !renamed { try? Sys.unlink(tmp) }
        }
        try fill(dst)
        try mapErrors(path, "cannot finish") {
            copyExtendedAttributes(from: original.fd, to: dst, attributes)
            if Sys.effectiveUserID == 0 || st.uid == Sys.effectiveUserID {
                try? Sys.fchown(dst, uid: st.uid, gid: st.gid)
            }
            try Sys.fchmod(dst, st.mode & 0o7777)
            try Sys.futimens(dst, access: st.accessTime, modification: st.modificationTime)
            try Sys.fsync(dst)
            do { try Sys.rename(tmp, path) } catch where error as? Errno == .resourceBusy {
                if wipe { wipeFile(original.fd, length: st.size) }
                original.close()
                try Sys.rename(tmp, path)
            }
        }
        renamed = true
        FileIO.syncDirectory(path.removingLastComponent())
        if wipe && original.isOpen { wipeFile(original.fd, length: st.size) }
    }

    /// Copies the extended attributes that describe the file (not our own, and not ones we may not set).
    /// How extended attributes move when a file is replaced.
    enum XattrTransform {
        /// As they are (a rebuild of an encrypted file: sealed values stay sealed).
        case copy
        /// Encrypting: `user.*` values are sealed under the new FEK as `user.efs.x.NAME`; sealed values left from
        /// an older key are dropped; other namespaces are copied.
        case seal(FileEncryptionKey)
        /// Decrypting: sealed values are opened back to `NAME`; other namespaces are copied.
        case open(FileEncryptionKey)
    }

    /// Copies the extended attributes that describe the file (not `system.*`), sealing or opening them as asked.
    func copyExtendedAttributes(from src: FileDescriptor, to dst: FileDescriptor, _ how: XattrTransform = .copy) {
        guard let names = try? Sys.listXattrs(src) else { return }
        for name in names where !name.hasPrefix("system.") {
            guard let v = try? Sys.getXattr(src, name) else { continue }
            let sealed = name.hasPrefix(NamedStreams.backingPrefix)
            switch how {
            case .copy:
                try? Sys.setXattr(dst, name, v)
            case .seal(let fek):
                if sealed { continue }
                if name.hasPrefix("user."), v.count <= NamedStreamCipher.maximumValueSize,
                    (NamedStreams.backingPrefix + name).utf8.count <= 255
                {
                    try? Sys.setXattr(dst, NamedStreams.backingPrefix + name, NamedStreamCipher(fek).seal(name: name, value: v))
                } else {
                    try? Sys.setXattr(dst, name, v)
                }
            case .open(let fek):
                if sealed {
                    let plainName = String(name.dropFirst(NamedStreams.backingPrefix.count))
                    if let p = try? NamedStreamCipher(fek).open(name: plainName, stored: v) { try? Sys.setXattr(dst, plainName, p) }
                } else {
                    try? Sys.setXattr(dst, name, v)
                }
            }
        }
    }

    /// Overwrites an unlinked file's blocks with zeros and flushes them.
    func wipeFile(_ fd: FileDescriptor, length: Int64) {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var off: Int64 = 0
        while off < length {
            let n = Int(min(Int64(zeros.count), length - off))
            guard (try? Sys.pwriteAll(fd, zeros[0..<n], at: off)) != nil else { return }
            off += Int64(n)
        }
        try? Sys.fdatasync(fd)
    }

    // MARK: - Handles

    /// Opens an encrypted file for plaintext access with one of the caller's keys.
    ///
    /// - Parameter deferSizeUpdates: write size changes at ``EncryptedFile/sync()``/``EncryptedFile/close()``
    ///   instead of with every write (the mount uses this; fsync still makes everything durable).
    public func open(at path: FilePath, writable: Bool = false, deferSizeUpdates: Bool = false) throws(EFSError) -> EncryptedFile {
        try open(at: path, displayPath: path, writable: writable, deferSizeUpdates: deferSizeUpdates, knownKey: nil, completingWrites: true)
    }

    /// The one open path: `path` reaches the file (it may be a `/proc/self/fd` link), `displayPath` names it in
    /// messages; `knownKey` is the FEK of a file this session just created (no unwrap needed).
    func open(at path: FilePath, displayPath: FilePath, writable: Bool, deferSizeUpdates: Bool, knownKey: FileEncryptionKey?,
              completingWrites: Bool = true) throws(EFSError) -> EncryptedFile {
        let fd: FileDescriptor
        do { fd = try Sys.open(path, writable ? .readWrite : .readOnly) } catch { throw EFSError.system(error, "cannot open", displayPath) }
        let info: EncryptedFileInfo
        do throws(EFSError) {
            let st = try mapErrors(displayPath, "cannot stat") { try Sys.fstat(fd) }
            if st.kind == .directory { throw EFSError(.invalidArgument, "\(displayPath) is a directory") }
            guard EncryptedFileInfo.hasMagic(fd) else { throw EFSError(.notEncrypted, "\(displayPath) is not encrypted") }
            let shared = try mapErrors(displayPath, "cannot lock") { writable ? try Sys.tryLockExclusive(fd) : try Sys.tryLockShared(fd) }
            guard shared else { throw EFSError(.sharingViolation, "\(displayPath) is open elsewhere (a writer excludes every other EFS open; readers exclude writers)") }
            info = try EncryptedFileInfo.read(fd, path: displayPath)
        } catch {
            Sys.close(fd)
            throw error
        }
        if info.journal != nil && !writable && completingWrites {
            // An overwrite was interrupted: a reader finishes it too when it may write the file (else the blocks
            // it covers may fail authentication until a writer opens the file).
            Sys.close(fd)
            Self.completePendingWrite(at: path)
            return try open(at: path, displayPath: displayPath, writable: false, deferSizeUpdates: deferSizeUpdates, knownKey: knownKey, completingWrites: false)
        }
        do throws(EFSError) {
            let fek: FileEncryptionKey
            if let knownKey, knownKey.fileID == info.header.fileID { fek = knownKey } else { fek = try fileKey(for: info.metadata, path: displayPath) }
            return try EncryptedFile(path: displayPath, fd: fd, closesDescriptor: true, writable: writable, info: info, fek: fek, deferSizeUpdates: deferSizeUpdates)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Completes the interrupted overwrite recorded at the end of the file at `path`, if it can be opened for
    /// writing and no one else has it open; otherwise leaves it for the next writer. Needs no key.
    static func completePendingWrite(at path: FilePath) {
        guard let fd = try? Sys.open(path, .readWrite) else { return }
        defer { Sys.close(fd) }
        guard (try? Sys.tryLockExclusive(fd)) == true, var info = try? EncryptedFileInfo.read(fd, path: path) else { return }
        try? info.completePendingWrite(fd, path: path)
    }

    /// What ``createFile(at:mode:)`` made.
    public enum NewFile: Sendable {
        /// The parent directory is marked encrypted: the new file is encrypted.
        case encrypted(EncryptedFile)
        /// A plain file, open for reading and writing.
        case plain(FileDescriptor)
    }

    /// Creates a new, empty file. In a directory marked encrypted the file is encrypted for the caller's current key
    /// and the volume's recovery agents; elsewhere it is a plain file. Fails if `path` exists.
    public func createFile(at path: FilePath, mode: UInt32 = 0o644) throws(EFSError) -> NewFile {
        let dir = path.removingLastComponent()
        let parent = dir.isEmpty ? FilePath(".") : dir
        if FileIO.exists(path) { throw EFSError(.alreadyExists, "\(path) already exists") }
        guard isEncryptedDirectory(parent) else {
            do { return .plain(try Sys.open(path, [.readWrite, .create, .exclusive], mode: FilePermissions(rawValue: CModeT(mode)))) } catch {
                throw EFSError.system(error, "cannot create", path)
            }
        }
        let volume = try Volume.find(containing: parent)
        let fek = FileEncryptionKey.generate(fileID: .random())
        let meta = try newFileMetadata(volume, fek: fek)
        try writeNewEncryptedFile(at: path, fek: fek, metadata: meta, mode: mode, replace: false)
        return .encrypted(try open(at: path, writable: true))
    }

    /// Whether `directory` is marked encrypted.
    public func isEncryptedDirectory(_ directory: FilePath) -> Bool {
        (try? Sys.lstat(directory.appending(DirectoryMarker.name)))?.kind == .regular
    }
}
