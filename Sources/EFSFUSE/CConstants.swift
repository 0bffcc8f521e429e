// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

// The FUSE callbacks receive open(2) flags, xattr flags and file modes as C integers; these are their values. This is
// EFSFUSE's only direct use of the C library (all system calls go through EFSSystem's `Sys`).
#if canImport(Glibc)
import Glibc
#endif

enum CFlags {
    static let accessModeMask = O_ACCMODE
    static let readOnly = O_RDONLY
    static let writeOnly = O_WRONLY
    static let readWrite = O_RDWR
    static let append = O_APPEND
    static let truncate = O_TRUNC
    static let exclusive = O_EXCL
    static let fileTypeMask = UInt32(S_IFMT)
    static let regular = UInt32(S_IFREG)
    static let setUserID = UInt32(S_ISUID)
    static let setGroupID = UInt32(S_ISGID)
    /// `XATTR_CREATE` and `XATTR_REPLACE` (`<sys/xattr.h>`).
    static let xattrCreate: Int32 = 1
    static let xattrReplace: Int32 = 2
    /// `RENAME_NOREPLACE`, `RENAME_EXCHANGE` and `RENAME_WHITEOUT` as the kernel passes them.
    static let renameNoReplace: UInt32 = 1
    static let renameExchange: UInt32 = 2
    static let renameWhiteout: UInt32 = 4
    /// `DT_DIR`, `DT_REG` … are the `S_IF*` type bits shifted right by 12.
    static func mode(forDirectoryType type: UInt8) -> UInt32 { UInt32(type) << 12 }
}
