// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import Crypto
import SwiftASN1

// Internal helpers for the test target (`@testable import EFSCore`), so tests need not import swift-crypto.

/// SHA-256 of `bytes`.
func _sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

enum PEMBlocks {
    /// The DER bytes of the first PEM block in `pem`.
    static func der(_ pem: String) -> [UInt8]? { (try? PEMDocument(pemString: pem))?.derBytes }
}
