// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSRawStream
import EFSSystem
import EFSWindows
import SystemPackage

/// A DDF or DRF entry left out of an import or export, and why.
public struct WindowsSkippedEntry: Sendable, Hashable {
    public var name: String
    /// Grouped hex, as the CLI prints thumbprints.
    public var thumbprint: String
    public var isRecovery: Bool
    public var reason: String
}

/// What ``EFSSession/importWindows(_:key:to:)`` made.
public struct WindowsImport: Sendable {
    public var decryption: WindowsDecryption
    /// The native file's users and recovery agents.
    public var users: [EFSCertificate]
    public var recoveryAgents: [EFSCertificate]
    /// Windows entries without a usable certificate.
    public var skipped: [WindowsSkippedEntry]
}

/// What ``EFSSession/exportWindows(_:to:ntfs3gEFSInfo:)`` wrote.
public struct WindowsExport: Sendable {
    /// DDF entries (users) and DRF entries (recovery agents) written.
    public var users: [EFSCertificate]
    public var recoveryAgents: [EFSCertificate]
    /// Users and agents that Windows EFS cannot represent (EC keys).
    public var skipped: [WindowsSkippedEntry]
    /// The streams written: "::$DATA" and the named streams, with their sizes.
    public var streams: [(name: String, size: UInt64)]
    /// Extended attributes that were not written, and why.
    public var skippedStreams: [(name: String, reason: String)]
}

extension EFSSession {
    // MARK: - Import

    /// Makes a native encrypted file at `path` from Windows EFS data, for the same users: each DDF entry becomes a
    /// user and each DRF entry a recovery agent, with the certificate found in the key store (by thumbprint) or
    /// among the certificates that came with `key`. Entries without a usable certificate are skipped and reported.
    /// The volume's recovery agents are added. Named streams become encrypted `user.NAME` extended attributes.
    ///
    /// The file is made atomically under a temporary name beside `path` and renamed into place after an fsync; on
    /// failure nothing is left. Plaintext exists only in memory, one segment at a time.
    ///
    /// - Throws: ``EFSError/Code/alreadyExists`` if `path` exists; ``EFSError/Code/notOnVolume`` outside a volume;
    ///   ``EFSError/Code/fileNotFound`` when no user has a usable certificate; and the errors of
    ///   ``WindowsInput/decrypt(key:toFile:mode:)``.
    public func importWindows(_ input: WindowsInput, key: WindowsKey, to path: FilePath) throws(EFSError) -> WindowsImport {
        if FileIO.exists(path) { throw EFSError(.alreadyExists, "\(path) already exists") }
        guard let volume = try Volume.find(containing: path) else {
            throw EFSError(.notOnVolume, "\(path) is not on an EFS volume: run 'efs init DIR' on a directory above it")
        }
        let (windows, _) = try input.metadata()
        // Fail on the key before anything is created.
        _ = try key.unwrap(windows, path: input.path)
        var users: [EFSCertificate] = []
        var agents: [EFSCertificate] = []
        var skipped: [WindowsSkippedEntry] = []
        for (entry, isRecovery) in windows.allEntries {
            switch certificate(for: entry, key: key) {
            case .success(let cert):
                if isRecovery {
                    if !agents.contains(where: { $0.thumbprint == cert.thumbprint }) { agents.append(cert) }
                } else if !users.contains(where: { $0.thumbprint == cert.thumbprint }) {
                    users.append(cert)
                }
            case .failure(let reason):
                skipped.append(
                    WindowsSkippedEntry(
                        name: entry.displayName, thumbprint: entry.thumbprintDescription, isRecovery: isRecovery,
                        reason: reason.message))
            }
        }
        guard !users.isEmpty else {
            throw EFSError(
                .fileNotFound,
                "none of the users of \(input.path) has a usable certificate: \(skipped.filter { !$0.isRecovery }.map { "\($0.name) (\($0.thumbprint)): \($0.reason)" }.joined(separator: "; "))"
            )
        }
        for a in volume.recoveryAgents where !agents.contains(where: { $0.thumbprint == a.thumbprint }) {
            agents.append(a)
        }
        let fek = FileEncryptionKey.generate(fileID: .random())
        let native = try metadata(users: users, agents: agents, fek: fek)
        let decryption = try AtomicOutput.write(path, mode: 0o666 & ~Sys.currentUmask(), replace: false) {
            (fd) throws(EFSError) -> WindowsDecryption in
            _ = try EncryptedFile.writeNewFileStructure(fd, fek: fek, metadata: native, path: path)
            let info = try EncryptedFileInfo.read(fd, path: path)
            let file = try EncryptedFile(
                path: path, fd: fd, closesDescriptor: false, writable: true, info: info, fek: fek, deferSizeUpdates: true)
            let d = try input.decrypt(key: key) { (offset, bytes) throws(EFSError) in try file.write(bytes, at: offset) }
            guard d.hasDataStream else {
                throw EFSError(
                    .notSupported, "\(input.path) is a directory's raw stream (it has no data stream); import makes files")
            }
            if d.size > file.size { try file.truncate(to: d.size) }
            for (name, value) in d.namedStreams { try file.setExtendedAttribute("user.\(name)", value) }
            try file.sync()
            try file.close()
            return d
        }
        return WindowsImport(decryption: decryption, users: users, recoveryAgents: agents, skipped: skipped)
    }

    /// The native certificate for a Windows entry: from the key store, else from the key's file.
    private func certificate(for entry: WindowsKeyEntry, key: WindowsKey) -> Result<EFSCertificate, EFSError> {
        guard let t = Thumbprint(bytes: entry.publicKeyInfo.thumbprint) else {
            return .failure(EFSError(.notSupported, "its thumbprint is not a 20-byte SHA-1"))
        }
        if FileIO.exists(keyStore.certPath(t)) {
            do { return .success(try keyStore.certificate(t)) } catch { return .failure(error) }
        }
        switch key.certificate(t) {
        case .success(let c)?: return .success(c)
        case .failure(let e)?: return .failure(EFSError(.notSupported, "its certificate cannot be used: \(e.message)"))
        case nil:
            return .failure(
                EFSError(.fileNotFound, "no certificate: not in the key store (add it with 'efs key import') nor in \(key.source)"))
        }
    }

    // MARK: - Export

    /// Writes the encrypted file at `path` (which one of this session's keys opens) as Windows EFS data: a Windows
    /// raw stream (ROBS) at `output`, or with `ntfs3gEFSInfo` ntfs-3g's `efs_raw` at `output` and the `$EFS` bytes
    /// at `ntfs3gEFSInfo`. The data is re-encrypted with a new AES-256 FEK, wrapped for each user's RSA certificate
    /// (DDF) and each RSA recovery agent (DRF); EC certificates cannot be represented in Windows EFS and are
    /// skipped. Extended attributes become named streams (not in the ntfs-3g form, which has none).
    ///
    /// Outputs are written atomically unless `output` is "-" (standard output, ROBS only).
    ///
    /// - Throws: ``EFSError/Code/notSupported`` when no user has an RSA certificate; the errors of ``open(at:writable:deferSizeUpdates:)``.
    public func exportWindows(_ path: FilePath, to output: String, ntfs3gEFSInfo: FilePath? = nil) throws(EFSError) -> WindowsExport {
        let file = try open(at: path)
        defer { try? file.close() }
        let fek: WindowsFEK
        let cipher: WindowsDataCipher
        do throws(FormatError) {
            fek = try WindowsFEK.generate(.aes256)
            cipher = try WindowsDataCipher(fek: fek)
        } catch {
            throw windowsError(error, path, "file encryption key")
        }
        var result = WindowsExport(users: [], recoveryAgents: [], skipped: [], streams: [], skippedStreams: [])
        var ddf: [WindowsKeyEntry] = []
        var drf: [WindowsKeyEntry] = []
        let meta = file.metadata
        for (entry, isRecovery) in meta.users.map({ ($0, false) }) + meta.recoveryAgents.map({ ($0, true) }) {
            let skip = { (reason: String) in
                result.skipped.append(
                    WindowsSkippedEntry(
                        name: entry.displayName, thumbprint: entry.thumbprint.description, isRecovery: isRecovery,
                        reason: reason))
            }
            guard entry.algorithm == .rsaOAEPSHA256 else {
                skip("an EC key (\(entry.algorithm)) cannot be represented in Windows EFS, which wraps keys with RSA")
                continue
            }
            do throws(FormatError) {
                let cert = try entry.certificate()
                let wrapped = try WindowsKeyEntry.wrapping(fek, for: cert, displayName: cert.displayName)
                if isRecovery {
                    drf.append(wrapped)
                    result.recoveryAgents.append(cert)
                } else {
                    ddf.append(wrapped)
                    result.users.append(cert)
                }
            } catch {
                skip(error.message)
            }
        }
        guard !ddf.isEmpty else {
            throw EFSError(
                .notSupported,
                "\(path): no user has an RSA certificate, and Windows EFS needs one (\(result.skipped.map(\.name).joined(separator: ", ")))"
            )
        }
        let windows = WindowsEFSMetadata(
            efsVersion: 2, efsID: LegacyCrypto.randomBytes(16), ddf: ddf, drf: drf.isEmpty ? nil : drf)
        let metadataBytes: [UInt8]
        do throws(FormatError) { metadataBytes = try windows.encode() } catch {
            throw windowsError(error, path, "$EFS")
        }

        func withOutput(_ body: (FileDescriptor) throws(EFSError) -> Void) throws(EFSError) {
            if output == "-" {
                try body(.standardOutput)
            } else {
                try AtomicOutput.write(FilePath(output), mode: 0o644, replace: true, body)
            }
        }
        func put(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(EFSError) {
            try mapErrors(FilePath(output), "cannot write") { try Sys.writeAll(fd, bytes) }
        }
        func eachChunk(_ body: ([UInt8]) throws(EFSError) -> Void) throws(EFSError) {
            var offset: UInt64 = 0
            while offset < file.size {
                let chunk = try file.read(at: offset, count: 1 << 20)
                if chunk.isEmpty { break }
                try body(chunk)
                offset += UInt64(chunk.count)
            }
        }
        func format<T>(_ body: () throws(FormatError) -> T) throws(EFSError) -> T {
            do throws(FormatError) { return try body() } catch { throw windowsError(error, path, "Windows stream") }
        }

        let names = try file.listExtendedAttributes()
        if let efsInfo = ntfs3gEFSInfo {
            for n in names { result.skippedStreams.append((n, "the ntfs-3g form carries only the unnamed stream")) }
            try withOutput { (fd) throws(EFSError) in
                var e = WindowsDataEncryptor(cipher: cipher)
                try eachChunk { (chunk) throws(EFSError) in try put(fd, try format { () throws(FormatError) in try e.encrypt(chunk) }) }
                try put(fd, try format { () throws(FormatError) in try e.finish() } + NTFS3GEfsRaw.trailer(size: e.size))
                result.streams.append(("::$DATA", e.size))
            }
            try FileIO.writeAtomically(efsInfo, metadataBytes, mode: 0o644)
            return result
        }
        try withOutput { (fd) throws(EFSError) in
            try put(fd, try format { () throws(FormatError) in try WindowsRawStreamWriter.begin(metadata: metadataBytes) })
            var w = try format { () throws(FormatError) in try WindowsRawStreamWriter(kind: .data, cipher: cipher) }
            try put(fd, w.streamHeader())
            try eachChunk { (chunk) throws(EFSError) in try put(fd, try format { () throws(FormatError) in try w.write(chunk) }) }
            try put(fd, try format { () throws(FormatError) in try w.finish() })
            result.streams.append(("::$DATA", w.size))
            for name in names {
                guard name.hasPrefix("user."), name.count > 5 else {
                    result.skippedStreams.append((name, "only user.* attributes become named streams"))
                    continue
                }
                guard let value = try file.extendedAttribute(name) else { continue }
                let streamName = String(name.dropFirst(5))
                var s = try format { () throws(FormatError) in try WindowsRawStreamWriter(kind: .named(streamName), cipher: cipher) }
                try put(fd, s.streamHeader())
                try put(fd, try format { () throws(FormatError) in try s.write(value) + s.finish() })
                result.streams.append((streamName, UInt64(value.count)))
            }
        }
        return result
    }
}
