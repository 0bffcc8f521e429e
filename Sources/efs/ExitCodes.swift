// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS

/// The numbered exit statuses of `efs`. A number never changes meaning and is never reused; new errors get new
/// numbers. Documented in `Documentation/cli.md`.
enum ExitStatus {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    /// `efs fsck` found problems (they are printed).
    static let fsckProblems: Int32 = 31
    // 64 is ArgumentParser's usage error (EX_USAGE).
    static let table: [(EFSError.Code, Int32, String)] = [
        (.fileNotFound, 10, "file or key not found"),
        (.accessDenied, 11, "permission denied"),
        (.sharingViolation, 12, "the file is in use (mounted, being exported, or changed meanwhile)"),
        (.notEncrypted, 13, "the file is not encrypted"),
        (.readOnly, 14, "the file is read-only"),
        (.encryptionDisallowed, 15, "encryption is not allowed here"),
        (.noKey, 16, "no key in the key store can open the file"),
        (.noUserKeys, 17, "no EFS key (run efs key new) or no current key"),
        (.wrongPassphrase, 18, "wrong or missing passphrase"),
        (.authenticationFailed, 19, "authentication failed: tampered, truncated or misplaced data"),
        (.corrupt, 20, "corrupt or malformed data"),
        (.unsupportedVersion, 21, "unsupported format version"),
        (.notOnVolume, 22, "not on an EFS volume"),
        (.alreadyExists, 23, "already exists"),
        (.ioError, 24, "input/output error"),
        (.lastUser, 25, "cannot remove the last user"),
        (.notSupported, 26, "not supported"),
        (.invalidArgument, 27, "invalid argument"),
        (.notExportFormat, 28, "not in the EFS export format"),
        (.invalidOperation, 29, "invalid operation"),
        (.aborted, 30, "stopped by a callback or by the reader of the output"),
    ]

    static func code(for error: EFSError) -> Int32 {
        table.first { $0.0 == error.code }?.1 ?? failure
    }
}
