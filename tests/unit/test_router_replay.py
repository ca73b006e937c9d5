"""What a chain's worker writes down of the routers it included (warm/router_replay.py) is made again, in the layer
that replays it, as values equal to the worker's (classes and functions: the same objects), or not written at all:
a value the layer could not make again (an object made in a function, a Depends) leaves that include out."""

import enum
import json

import pytest
from fastapi import APIRouter, Depends
from fastapi.datastructures import Default
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.utils import generate_unique_id

from unstuck.warm import router_replay


class Tags(enum.Enum):
    shop = "shop"


def test_plain_settings_are_made_again_equal_and_classes_and_functions_the_same():
    settings = {"prefix": "/api", "tags": ["a", Tags.shop], "responses": {404: {"description": "none", "model": None}},
                "default_response_class": Default(JSONResponse), "response_class": ORJSONResponse,
                "generate_unique_id_function": Default(generate_unique_id), "deprecated": None, "ids": (1, 2.5, True)}
    decoded = {name: router_replay.decode(json.loads(json.dumps(router_replay.encode(value))))
               for name, value in settings.items()}
    assert decoded["tags"][1] is Tags.shop and decoded["response_class"] is ORJSONResponse
    assert decoded["default_response_class"].value is JSONResponse
    assert decoded["generate_unique_id_function"].value is generate_unique_id
    assert list(decoded["responses"]) == [404] and decoded["ids"] == (1, 2.5, True)
    assert {name: value for name, value in decoded.items() if "default" not in name and "unique" not in name} == {
        name: value for name, value in settings.items() if "default" not in name and "unique" not in name}


def test_a_value_the_layer_could_not_make_again_leaves_the_include_out():
    def local():
        pass

    for value in (local, lambda: None, object(), Depends(local), {1, 2}):
        with pytest.raises(router_replay.NotPlain):
            router_replay.encode(value)
    api, shop = APIRouter(prefix="/api", dependencies=[Depends(local)]), APIRouter(prefix="/shop")
    plain = APIRouter(prefix="/v1")
    described = router_replay.described([(api, shop, {}), (plain, shop, {"tags": [local]}), (plain, shop, {})])
    assert [call["settings"]["prefix"] for call in described] == ["/v1"] and described[0]["included"] == id(shop)
