// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import SystemPackage

/// The one place where errors become the errno a FUSE reply carries.
enum FUSEErrno {
    /// The positive errno for `error`: ``EFSError/errno`` for EFS errors, the value itself for `Errno`, else EIO.
    ///
    /// An EFS I/O error that a system call caused carries that call's errno instead (ENOSPC, EDQUOT, EFBIG …):
    /// programs act on those, and EIO would make a full disk look like a damaged file.
    static func code(for error: any Error) -> Int32 {
        switch error {
        case let e as EFSError: return (e.code == .ioError ? systemCause(of: e) : nil)?.rawValue ?? e.errno.rawValue
        case let e as Errno: return e.rawValue
        default: return Errno.ioError.rawValue
        }
    }

    /// The errno at the bottom of an error's chain of causes, if a system call is there.
    static func systemCause(of error: EFSError) -> Errno? {
        var cause = error.cause
        while let c = cause {
            if let e = c as? Errno { return e }
            cause = (c as? EFSError)?.cause
        }
        return nil
    }

    /// Whether a failure is worth a line in the log: key, integrity and locking problems with a file, which the
    /// caller only sees as EACCES, EIO or EBUSY.
    static func shouldLog(_ error: any Error) -> Bool {
        guard let e = error as? EFSError else { return false }
        switch e.code {
        case .fileNotFound, .alreadyExists, .invalidArgument, .notEncrypted: return false
        default: return true
        }
    }
}
