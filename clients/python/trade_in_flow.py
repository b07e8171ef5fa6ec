#!/usr/bin/python3
"""A trade-in from intake to testing through casework's gRPC API.

  ./generate.sh && ./trade_in_flow.py --server 127.0.0.1:7400

Talks to a development server (caseworkd --dev) with metadata identity, or
to a production one with --token and --ca. Prints the case's journey and
exits non-zero if any step does not do what the procedure says.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.environ.get("CASEWORK_PY_GEN", os.path.join(os.path.dirname(__file__), "gen")))

import grpc  # noqa: E402
from casework.v1 import trade_in_pb2, trade_in_pb2_grpc  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", default="127.0.0.1:7400")
    p.add_argument("--token", help="bearer token (production servers)")
    p.add_argument("--ca", help="CA file: use TLS")
    args = p.parse_args()

    if args.ca:
        with open(args.ca, "rb") as f:
            channel = grpc.secure_channel(args.server, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.server)
    stub = trade_in_pb2_grpc.TradeInServiceStub(channel)

    def who(role):
        md = [("x-casework-role", role)]
        md.append(("authorization", "Bearer " + args.token) if args.token
                  else ("x-casework-principal", "python-example"))
        return md

    n = int(time.time() * 1000) % 10**9
    created = stub.CreateTradeIn(trade_in_pb2.CreateTradeInRequest(
        trade_in=trade_in_pb2.TradeIn(
            v_number="V%09d" % n, s_number="S%09d" % n, product_name="Galaxy S22",
            problem=trade_in_pb2.TRADE_IN_PROBLEM_DEVICE_LOCKED,
            customer=trade_in_pb2.TradeInCustomer(display_name="Jan de Vries", email="jan@example.nl")),
        request_id="python-%d" % n), metadata=who("ops"), timeout=10)
    print("created", created.name, trade_in_pb2.TradeInState.Name(created.state))

    contacted = stub.ContactCustomer(trade_in_pb2.ContactCustomerRequest(name=created.name, etag=created.etag),
                                     metadata=who("cs_agent"), timeout=10)
    print("contacted", trade_in_pb2.TradeInState.Name(contacted.state))

    try:
        stub.ContactCustomer(trade_in_pb2.ContactCustomerRequest(name=created.name, etag=created.etag),
                             metadata=who("cs_agent"), timeout=10)
        sys.exit("a stale etag was accepted")
    except grpc.RpcError as e:
        print("stale etag refused:", e.code().name)
        if e.code() != grpc.StatusCode.ABORTED:
            sys.exit("expected ABORTED")

    testing = stub.RecordUnlockCode(trade_in_pb2.RecordUnlockCodeRequest(name=created.name, unlock_code="2468"),
                                    metadata=who("cs_agent"), timeout=10)
    print("unlock code recorded", trade_in_pb2.TradeInState.Name(testing.state))
    if testing.state != trade_in_pb2.TRADE_IN_STATE_TESTING:
        sys.exit("expected TESTING")

    board = stub.GetTradeInBoard(trade_in_pb2.GetTradeInBoardRequest(), metadata=who("cs_agent"), timeout=10)
    for column in board.columns:
        print("  %-22s %d" % (column.state, column.count))
    events = stub.ListTradeInEvents(trade_in_pb2.ListTradeInEventsRequest(parent=created.name),
                                    metadata=who("cs_agent"), timeout=10)
    for e in events.events:
        print("  #%d %s: %s" % (e.sequence, e.actor.principal, e.message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
