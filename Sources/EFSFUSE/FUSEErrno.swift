// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import SystemPackage

/// The one place where errors become the errno a FUSE reply carries.
enum FUSEErrno {
    /// The positive errno for `error`: ``EFSError/errno`` for EFS errors, the value itself for `Errno`, else EIO.
    static func code(for error: any Error) -> Int32 {
        switch error {
        case let e as EFSError: return e.errno.rawValue
        case let e as Errno: return e.rawValue
        default: return Errno.ioError.rawValue
        }
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
