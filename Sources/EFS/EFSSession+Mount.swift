// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// What the FUSE mount needs from a session beyond the file API: every key unlocked before the mount starts, the
/// plaintext size of a file that is not open, and opens and creates whose messages name the file as the mount shows
/// it rather than by the descriptor path the mount reaches it through.
extension EFSSession {
    /// Unlocks the private key of every certificate in the key store that has one, so that no later open needs a
    /// passphrase. The keys stay in memory only, for the life of the session.
    ///
    /// - Returns: the keys that could not be unlocked, with the reason (the caller decides whether that is fatal).
    public func unlockAllKeys() throws(EFSError) -> [(certificate: EFSCertificate, error: EFSError)] {
        var failures: [(certificate: EFSCertificate, error: EFSError)] = []
        for entry in try keyStore.list() where entry.hasPrivateKey {
            do { _ = try privateKey(entry.thumbprint, displayName: entry.certificate.displayName) } catch {
                failures.append((entry.certificate, error))
            }
        }
        return failures
    }

    /// The plaintext size of the encrypted file open at `fd`, read without taking its EFS lock.
    ///
    /// - Parameter path: the name used in error messages.
    /// - Returns: the exact size when one of the session's keys opens the file; otherwise the largest size its
    ///   stored data could hold (a stat of a file one cannot read still shows a plausible size).
    /// - Throws: ``EFSError/Code/corrupt`` and related codes when the header or key lists cannot be read.
    public func plaintextSize(of fd: FileDescriptor, path: FilePath?) throws(EFSError) -> UInt64 {
        let info = try EncryptedFileInfo.read(fd, path: path)
        let upperBound = ContentCipher.plaintextSize(forStoredLength: info.storedDataLength) ?? 0
        let fek: FileEncryptionKey
        do { fek = try fileKey(for: info.metadata, path: path) } catch {
            if error.code == .noKey || error.code == .wrongPassphrase || error.code == .noUserKeys { return upperBound }
            throw error
        }
        do {
            let rec = try SizeRecord.current(info.sizeRecordBytes[0..<64], info.sizeRecordBytes[64..<128], fek)
            return min(rec.plaintextSize, upperBound)
        } catch {
            throw EFSError.format(error, path)
        }
    }

    /// Opens the encrypted file at `path` (any name that reaches it, such as a `/proc/self/fd` link) for plaintext
    /// access, naming it `displayPath` in messages. Otherwise the same as ``open(at:writable:deferSizeUpdates:)``.
    public func open(at path: FilePath, displayPath: FilePath, writable: Bool, deferSizeUpdates: Bool) throws(EFSError) -> EncryptedFile {
        try open(at: path, displayPath: displayPath, writable: writable, deferSizeUpdates: deferSizeUpdates, knownKey: nil)
    }

    /// Creates a new, empty encrypted file at `path` for the caller's current key and the recovery agents of the
    /// volume that holds it, and opens it for writing with deferred size updates. Fails if `path` exists.
    ///
    /// The mount calls this for files created in a directory marked encrypted, with the volume it serves (so the
    /// recovery policy is not looked up, and a copied-in `.efs` directory below is never taken for a volume), and
    /// with ext4's durability: the new file is renamed into place but not fsynced (`fsync(2)` does that).
    ///
    /// The handle keeps the descriptor the file was written through, locked exclusively before the file gets its
    /// name, and what was written: no second open, lock or read of the header (and no unwrap of the new FEK).
    public func createEncryptedFile(at path: FilePath, displayPath: FilePath, mode: UInt32, volume: Volume? = nil) throws(EFSError) -> EncryptedFile {
        let dir = path.removingLastComponent()
        var volume = volume
        if volume == nil { volume = try Volume.find(containing: dir.isEmpty ? FilePath(".") : dir) }
        let (fek, meta) = try newFileKey(volume)
        let info: EncryptedFileInfo
        let fd: FileDescriptor
        do {
            (info, fd) = try AtomicOutput.writeKeepingOpen(path, mode: mode, replace: false, durable: false) {
                (fd) throws(EFSError) -> EncryptedFileInfo in
                // No one else can have the temporary file open yet, so the lock is always granted.
                guard try mapErrors(path, "cannot lock", { try Sys.tryLockExclusive(fd) }) else {
                    throw EFSError(.sharingViolation, "\(path) is open elsewhere")
                }
                return try EncryptedFile.writeNewFile(fd, fek: fek, metadata: meta, path: path)
            }
        } catch {
            throw EFSError(error.code, error.message.replacingOccurrences(of: path.string, with: displayPath.string), cause: error)
        }
        do {
            return try EncryptedFile(path: displayPath, fd: fd, closesDescriptor: true, writable: true, info: info, fek: fek, deferSizeUpdates: true)
        } catch {
            Sys.close(fd)
            throw error
        }
    }
}
