// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import Synchronization

/// One ``EncryptedFile`` per open backing file, shared by every open of it through the mount (all its names and
/// hard links), and reference counted: the FEK is unwrapped once, the EFS lock is held while any open exists, and
/// deferred size updates stay coherent because there is only one handle to defer them in.
final class SharedEncryptedFiles: Sendable {
    /// An open encrypted file. Its fields change only under the registry's lock.
    final class Entry: @unchecked Sendable {
        let id: BackingID
        fileprivate var file: EncryptedFile
        /// Read-only handles replaced by a writable one; closed with the entry.
        fileprivate var retired: [EncryptedFile] = []
        fileprivate var references = 0

        fileprivate init(id: BackingID, file: EncryptedFile) {
            self.id = id
            self.file = file
        }
    }

    private let entries = Mutex<[BackingID: Entry]>([:])

    /// The current handle of an entry.
    func file(_ entry: Entry) -> EncryptedFile { entries.withLock { _ in entry.file } }

    /// The handle of the open file with identity `id`, if the mount has it open.
    func openFile(_ id: BackingID) -> EncryptedFile? { entries.withLock { $0[id]?.file } }

    /// Takes a reference to the shared handle of `id`, opening it with `open(writable)` if the mount does not have
    /// it open yet. A writable request on a read-only handle replaces it with a writable one.
    ///
    /// `open` is called with `true` first; if that fails with an access error and `writable` is false, it is called
    /// again with `false`.
    func acquire(_ id: BackingID, writable: Bool, open: (Bool) throws(EFSError) -> EncryptedFile) throws(EFSError) -> Entry {
        try entries.withLock { (map: inout [BackingID: Entry]) throws(EFSError) -> Entry in
            if let e = map[id] {
                if writable && !e.file.writable {
                    // OFD locks conflict even within a process: the read-only handle gives up its shared lock
                    // before the exclusive one is taken. It stays open (retired) until the entry closes: a read
                    // that took it just before goes on on a live descriptor, not a closed or reused one.
                    let old = e.file
                    old.releaseLock()
                    e.retired.append(old)
                    do throws(EFSError) { e.file = try open(true) } catch {
                        // The writable open failed: the entry goes on read-only, on a new handle if one opens, else
                        // on the old one with its shared lock taken back, so the file is never served unlocked.
                        if let reopened = try? open(false) {
                            e.file = reopened
                        } else if old.relockShared() {
                            e.retired.removeAll { $0 === old }
                        }
                        throw error
                    }
                }
                e.references += 1
                return e
            }
            let file: EncryptedFile
            do throws(EFSError) { file = try open(true) } catch {
                guard !writable, error.code == .accessDenied || error.code == .readOnly else { throw error }
                file = try open(false)
            }
            let e = Entry(id: id, file: file)
            e.references = 1
            map[id] = e
            return e
        }
    }

    /// Registers a handle the mount just created (one reference). If the file is somehow open already, the new
    /// handle is closed and the existing one shared.
    func adopt(_ id: BackingID, _ file: EncryptedFile) -> Entry {
        let (entry, extra): (Entry, EncryptedFile?) = entries.withLock { map in
            if let e = map[id] {
                e.references += 1
                return (e, file)
            }
            let e = Entry(id: id, file: file)
            e.references = 1
            map[id] = e
            return (e, nil)
        }
        try? extra?.close()
        return entry
    }

    /// Drops a reference; the last one closes the handle (writing any deferred size) and releases the EFS lock.
    /// The close happens under the lock so that a new open never reads a size record older than the close writes.
    func release(_ entry: Entry) throws(EFSError) {
        try entries.withLock { (map: inout [BackingID: Entry]) throws(EFSError) in
            entry.references -= 1
            guard entry.references == 0 else { return }
            if map[entry.id] === entry { map[entry.id] = nil }
            for r in entry.retired { try? r.close() }
            entry.retired = []
            try entry.file.close()
        }
    }

    /// Closes every open handle (unmount with files still open, e.g. after a lazy unmount).
    func closeAll() {
        entries.withLock { map in
            for e in map.values {
                for r in e.retired { try? r.close() }
                try? e.file.close()
            }
            map = [:]
        }
    }
}
