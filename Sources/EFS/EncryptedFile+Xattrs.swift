// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSCore
import EFSSystem
import SystemPackage

/// Encrypted extended attributes of an encrypted file: attribute `NAME` is stored on the backing file as
/// `user.efs.x.NAME`, its value sealed with ``NamedStreamCipher``. The raw stream carries them as named streams.
/// Only `user.*` names are encrypted this way; the mount passes other namespaces through or refuses them.
extension EncryptedFile {
    static func backingName(_ name: String) -> String { NamedStreams.backingPrefix + name }

    /// The names of the file's encrypted attributes.
    public func listExtendedAttributes() throws(EFSError) -> [String] {
        let names = try mapErrors(path, "cannot list extended attributes") { try Sys.listXattrs(fd) }
        return names.filter { $0.hasPrefix(NamedStreams.backingPrefix) }.map { String($0.dropFirst(NamedStreams.backingPrefix.count)) }.sorted()
    }

    /// The plaintext value of attribute `name`, or nil if it does not exist.
    ///
    /// - Throws: ``EFSError/Code/authenticationFailed`` if the stored value was modified or moved.
    public func extendedAttribute(_ name: String) throws(EFSError) -> [UInt8]? {
        let stored: [UInt8]
        do { stored = try Sys.getXattr(fd, Self.backingName(name)) } catch {
            if error.rawValue == 61 /* ENODATA */ { return nil }
            throw EFSError.system(error, "cannot read extended attribute \(name)", path)
        }
        do { return try NamedStreamCipher(fek).open(name: name, stored: stored) } catch {
            throw EFSError(.authenticationFailed, "\(path?.string ?? "file"): extended attribute \(name) failed authentication", cause: error)
        }
    }

    /// Sets attribute `name` to `value` (encrypted).
    public func setExtendedAttribute(_ name: String, _ value: [UInt8]) throws(EFSError) {
        guard writable else { throw EFSError(.accessDenied, "\(path?.string ?? "file"): not open for writing") }
        guard value.count <= NamedStreamCipher.maximumValueSize, !name.isEmpty,
            Self.backingName(name).utf8.count <= 255
        else { throw EFSError(.invalidArgument, "extended attribute \(name) is too large or its name too long") }
        let sealed = NamedStreamCipher(fek).seal(name: name, value: value)
        try mapErrors(path, "cannot set extended attribute \(name)") { try Sys.setXattr(fd, Self.backingName(name), sealed) }
    }

    /// Removes attribute `name`. Returns false if it did not exist.
    @discardableResult
    public func removeExtendedAttribute(_ name: String) throws(EFSError) -> Bool {
        guard writable else { throw EFSError(.accessDenied, "\(path?.string ?? "file"): not open for writing") }
        do { try Sys.removeXattr(fd, Self.backingName(name)) } catch {
            if error.rawValue == 61 { return false }
            throw EFSError.system(error, "cannot remove extended attribute \(name)", path)
        }
        return true
    }
}
