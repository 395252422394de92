#!/usr/bin/env python3
"""Tests of gen_models.py's merge rules on small synthetic models, plus a check of the
real installed sources when they are present. Run: python3 -m unittest gen_models_test
(from tools/)."""

import json
import os
import tempfile
import unittest
import zlib

import gen_models

BOTOCORE = "/usr/lib/python3/dist-packages/botocore/data"
AWSSDK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules", "aws-sdk",
                      "apis")

# botocore: named shapes with constraints, an error shape, docs.
BOTO = {
    "metadata": {"protocol": "query", "apiVersion": "2010-05-08", "endpointPrefix": "iam",
                 "xmlNamespace": "https://iam.amazonaws.com/doc/2010-05-08/"},
    "operations": {
        "CreateUser": {
            "name": "CreateUser",
            "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": "CreateUserRequest"},
            "output": {"shape": "CreateUserResponse", "resultWrapper": "CreateUserResult"},
            "errors": [{"shape": "EntityAlreadyExistsException"}],
            "documentation": "<p>Creates a user.</p>",
        },
        "OldOperation": {"name": "OldOperation", "input": {"shape": "CreateUserRequest"}},
    },
    "shapes": {
        "CreateUserRequest": {
            "type": "structure", "required": ["UserName"],
            "members": {"UserName": {"shape": "userNameType", "documentation": "x"},
                        "Tags": {"shape": "tagListType"},
                        "Mode": {"shape": "modeType"}},
        },
        "CreateUserResponse": {"type": "structure", "members": {"User": {"shape": "User"}}},
        "User": {"type": "structure", "members": {"UserName": {"shape": "userNameType"},
                                                  "CreateDate": {"shape": "dateType"}}},
        "userNameType": {"type": "string", "min": 1, "max": 64, "pattern": "[\\w+=,.@-]+"},
        "tagListType": {"type": "list", "member": {"shape": "Tag"}, "max": 50},
        "Tag": {"type": "structure", "required": ["Key"],
                "members": {"Key": {"shape": "tagKeyType"}}},
        "tagKeyType": {"type": "string", "min": 1, "max": 128},
        "modeType": {"type": "string", "enum": ["A", "B"]},
        "dateType": {"type": "timestamp"},
        "EntityAlreadyExistsException": {
            "type": "structure", "members": {"message": {"shape": "errMsg"}},
            "error": {"code": "EntityAlreadyExists", "httpStatusCode": 409, "senderFault": True},
            "exception": True, "documentation": "exists",
        },
        "errMsg": {"type": "string"},
    },
}

# aws-sdk v2: inline shapes, renamed named shapes, a new operation and member, no
# constraints, Mode turned into an integer (a type change: no constraint copy).
AWSSDK_DOC = {
    "metadata": {"protocol": "query", "apiVersion": "2010-05-08", "endpointPrefix": "iam",
                 "xmlNamespace": "https://iam.amazonaws.com/doc/2010-05-08/",
                 "serviceId": "IAM"},
    "operations": {
        "CreateUser": {
            "input": {"type": "structure", "required": ["UserName"],
                      "members": {"UserName": {}, "Tags": {"shape": "S3"},
                                  "Mode": {"type": "integer"}, "NewMember": {}}},
            "output": {"resultWrapper": "CreateUserResult", "type": "structure",
                       "members": {"User": {"shape": "S6"}}},
        },
        "BrandNewOperation": {"input": {"type": "structure", "members": {"Name": {}}}},
    },
    "shapes": {
        "S3": {"type": "list", "member": {"type": "structure", "required": ["Key"],
                                          "members": {"Key": {}}}},
        "S6": {"type": "structure", "members": {"UserName": {}, "CreateDate": {"type": "timestamp"}}},
    },
}


class MergeTest(unittest.TestCase):

    def setUp(self):
        self.doc = gen_models.merge("iam", json.loads(json.dumps(BOTO)),
                                    json.loads(json.dumps(AWSSDK_DOC)))
        self.shapes = self.doc["shapes"]

    def shape_of(self, struct, member):
        return self.shapes[self.shapes[struct]["members"][member]["shape"]]

    def test_newer_operations_are_the_base(self):
        self.assertIn("BrandNewOperation", self.doc["operations"])
        self.assertNotIn("OldOperation", self.doc["operations"])
        req = self.doc["operations"]["CreateUser"]["input"]["shape"]
        self.assertIn("NewMember", self.shapes[req]["members"])

    def test_inline_shapes_take_botocore_names_and_constraints(self):
        op = self.doc["operations"]["CreateUser"]
        self.assertEqual(op["input"]["shape"], "CreateUserRequest")
        user_name = self.shape_of("CreateUserRequest", "UserName")
        self.assertEqual((user_name["min"], user_name["max"], user_name["pattern"]),
                         (1, 64, "[\\w+=,.@-]+"))
        self.assertEqual(self.shapes["CreateUserRequest"]["members"]["UserName"]["shape"],
                         "userNameType")

    def test_constraints_follow_lists_and_renamed_shapes(self):
        tags = self.shape_of("CreateUserRequest", "Tags")
        self.assertEqual(tags["max"], 50)
        tag = self.shapes[tags["member"]["shape"]]
        key = self.shapes[tag["members"]["Key"]["shape"]]
        self.assertEqual((key["min"], key["max"]), (1, 128))

    def test_type_changes_copy_nothing(self):
        mode = self.shape_of("CreateUserRequest", "Mode")
        self.assertEqual(mode["type"], "integer")
        self.assertNotIn("enum", mode)

    def test_errors_and_metadata(self):
        op = self.doc["operations"]["CreateUser"]
        self.assertEqual(op["errors"], [{"shape": "EntityAlreadyExistsException"}])
        err = self.shapes["EntityAlreadyExistsException"]
        self.assertEqual(err["error"]["code"], "EntityAlreadyExists")
        self.assertNotIn("documentation", err)
        self.assertEqual(op["output"]["resultWrapper"], "CreateUserResult")
        self.assertEqual(op["http"], {"method": "POST", "requestUri": "/"})
        self.assertEqual(self.doc["metadata"]["protocols"], ["query"])
        self.assertEqual(self.doc["metadata"]["serviceId"], "IAM")

    def test_no_documentation_survives(self):
        self.assertNotIn("documentation", json.dumps(self.doc))

    def test_every_reference_resolves(self):
        def refs(obj):
            if isinstance(obj, dict):
                if "shape" in obj and isinstance(obj["shape"], str):
                    yield obj["shape"]
                for v in obj.values():
                    yield from refs(v)
            elif isinstance(obj, list):
                for v in obj:
                    yield from refs(v)
        for name in refs(self.doc):
            self.assertIn(name, self.shapes)

    def test_cloudwatch_override(self):
        doc = gen_models.merge("cloudwatch", {"metadata": {}, "operations": {}, "shapes": {}},
                               {"metadata": {"protocol": "query"}, "operations": {},
                                "shapes": {}})
        self.assertEqual(doc["metadata"]["targetPrefix"], "GraniteServiceVersion20100801")
        self.assertIn("smithy-rpc-v2-cbor", doc["metadata"]["protocols"])

    def test_write_cc_embeds_compressed_documents(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "out.cc")
            gen_models.write_cc(path, [("iam", self.doc)])
            with open(path) as f:
                text = f.read()
        self.assertIn('{"iam", "iam", "", "query", kModel0, sizeof(kModel0), ', text)
        start = text.index("kModel0[] = {") + len("kModel0[] = {")
        data = bytes(int(b) for b in text[start:text.index("};", start)].replace("\n", "").split(","))
        self.assertEqual(json.loads(zlib.decompress(data)), self.doc)


@unittest.skipUnless(os.path.isdir(BOTOCORE) and os.path.isdir(AWSSDK), "sources not installed")
class InstalledSourcesTest(unittest.TestCase):

    def test_sagemaker_and_iam(self):
        boto, sdk = gen_models.load_sources("sagemaker", BOTOCORE, AWSSDK)
        doc = gen_models.merge("sagemaker", boto, sdk)
        self.assertIn("CreateMlflowTrackingServer", doc["operations"])
        self.assertNotIn("CreateMlflowTrackingServer", boto["operations"])
        boto, sdk = gen_models.load_sources("iam", BOTOCORE, AWSSDK)
        doc = gen_models.merge("iam", boto, sdk)
        req = doc["shapes"][doc["operations"]["CreateUser"]["input"]["shape"]]
        name = doc["shapes"][req["members"]["UserName"]["shape"]]
        self.assertEqual((name["min"], name["max"], name["pattern"]), (1, 64, "[\\w+=,.@-]+"))


if __name__ == "__main__":
    unittest.main()
