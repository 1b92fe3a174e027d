"""Does a model colour things in the colour people agree on? Draw 35 such things, complete them, measure.

Usage: QT_QPA_PLATFORM=offscreen python3 docs/usual_colours.py PRESET [PRESET ...] [--model NAME=FILE ...]
       [--out docs/evaluation] [--threads N]

A banana is yellow, a frog green, a drop of water blue: whoever draws one expects it back in
that colour, whatever else the style does. ``freehand.py`` judges whether a model follows the
lines; this script judges whether it knows the usual colour of the thing drawn. The drawings
(table ``THINGS`` below: what each one is, the hue range people agree on, and which closed area
is the thing's body) are simple outlines with a few inner details, as a person draws them, and
go through the real canvas widget with synthetic mouse events exactly as in ``freehand.py``
(same hand wobble, mouse pressure, smoothing, export). Each is drawn twice with the same hand
movements: with the canvas's default pen (``pen``) and with a bold marker three times as wide
(``marker``), since people draw both ways and a model may colour a thick outline differently.
The sketches are completed in-process with the preset's settings (seed 0, CPU), ink lines off,
so the model's own picture is judged.

Scoring. The body is a closed area of the drawing: the sketch is scaled to the result's size,
its lines (grey below 200) widened by a pixel, and the paper split into 4-connected pieces; the
pieces that touch the border are the paper around the drawing. The body is the largest of the
others, or, where the table gives a point, the piece under that point (grapes, corn: the
largest piece there would be a leaf). Over the result's pixels in the body (OpenCV HSV, hue
0-360, saturation and value 0-1) the median saturation and value are taken, and the median hue
of the pixels with saturation >= 0.15 (greys have no hue; hues are unwrapped around their
circular mean first, so reds do not split into 350 and 10). A drawing comes out in its usual
colour when that hue is in the expected range, the saturation is >= 0.25 and, for brown, the
value <= 0.75. Beside it: edge precision and recall of the result against the drawing and the
coloured share of the paper around the drawing, as ``freehand.measure`` computes them.

Writes OUT/usual-colours-PRESET.png (a row per thing: the drawing with the scored body tinted
in the expected colour, and the result, for the pen and the marker, with the verdict in the
label) and OUT/usual-colours-PRESET.json (every row and the totals), and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import freehand  # noqa: E402
from freehand import DOCS, SEED, SIDE, arc, bezier, circle, line, polar  # noqa: E402
from sketchapp.core.device import configure_cpu_threads, select_device  # noqa: E402
from sketchapp.core.engines import REGISTRY, open_engine  # noqa: E402
from sketchapp.ui.canvas import Canvas  # noqa: E402
from sketchapp.ui.sketch import SketchDocument  # noqa: E402

# -- what is expected ------------------------------------------------------------------------
# colour: (word, hue from, hue to (degrees on the HSV circle, wrapping past 360), highest value or None)
YELLOW = ("yellow", 35, 75, None)
ORANGE = ("orange", 15, 45, None)
RED = ("red", 340, 20, None)
PINK = ("pink or red", 300, 20, None)  # only the pig and the lips may be pink
GREEN = ("green", 70, 170, None)
BLUE = ("blue", 180, 260, None)
BROWN = ("brown", 10, 45, 0.75)  # orange hues, darker
PURPLE = ("purple", 260, 320, None)
MIN_SATURATION = 0.25  # below it the body is grey or white, whatever its hue
HUE_SATURATION = 0.15  # pixels greyer than this have no hue worth a vote


@dataclass(frozen=True)
class Thing:
    name: str
    colour: tuple[str, float, float, float | None]
    body: tuple[float, float] | None  # a point in the body (document px, 512 sheet), or None: the largest closed area


THINGS = [  # name        usual colour  body
    Thing("smiley",      YELLOW,  None),  # face with eyes and a smile
    Thing("sad-face",    YELLOW,  None),  # face with eyes and a frown
    Thing("heart",       RED,     None),
    Thing("apple",       RED,     None),  # with a stem and a leaf
    Thing("sun",         YELLOW,  None),  # circle with rays
    Thing("banana",      YELLOW,  None),  # crescent with a stalk end
    Thing("lemon",       YELLOW,  None),  # pointed oval
    Thing("leaf",        GREEN,   None),  # with a midrib (the body is one half) and veins
    Thing("frog",        GREEN,   None),  # wide face, eyes bulging on top
    Thing("tree",        GREEN,   None),  # cloud-shaped crown on a trunk
    Thing("cactus",      GREEN,   None),  # saguaro with two arms
    Thing("water-drop",  BLUE,    None),
    Thing("fish",        BLUE,    None),
    Thing("fire",        ORANGE,  None),  # flame with three tongues and an inner flame
    Thing("carrot",      ORANGE,  None),  # with leaves on top
    Thing("orange",      ORANGE,  None),  # the fruit, with a leaf
    Thing("bear",        BROWN,   None),  # face with ears and a snout
    Thing("cookie",      BROWN,   None),  # with chocolate chips
    Thing("strawberry",  RED,     None),  # with seeds and a leafy top
    Thing("tomato",      RED,     None),  # with a star-shaped calyx
    Thing("star",        YELLOW,  None),
    Thing("moon",        YELLOW,  None),  # crescent
    Thing("whale",       BLUE,    None),  # with a tail and a spout
    Thing("mushroom",    RED,     None),  # spotted cap on a stem: the cap
    Thing("cheese",      YELLOW,  None),  # wedge with holes
    Thing("pear",        GREEN,   None),  # with a stem and a leaf
    Thing("grapes",      PURPLE,  (256, 250)),  # ten round grapes: the middle one
    Thing("pig",         PINK,    None),  # face with ears and a snout
    Thing("chick",       YELLOW,  None),  # round, with a beak, a wing and feet
    Thing("lips",        PINK,    None),  # upper and lower lip: the lower one
    Thing("clover",      GREEN,   None),  # three round leaves on a stem: one leaf
    Thing("pumpkin",     ORANGE,  None),  # with ribs (the body is the middle one) and a stem
    Thing("corn",        YELLOW,  (256, 200)),  # cob with kernels between two husk leaves: the cob
    Thing("acorn",       BROWN,   None),  # cap and nut: the nut
    Thing("eggplant",    PURPLE,  None),  # with a green cap
]
PENS = {"pen": None, "marker": 3.0}  # brush: the canvas's default, and three times it

CELL, GAP, LABEL_W, HEADER_H = 160, 6, 190, 64
Shape = freehand.Shape


def ring(path: np.ndarray) -> Shape:
    return (path, True)


def stroke(path: np.ndarray) -> Shape:
    return (path, False)


def dot(x: float, y: float) -> Shape:
    """A short dash, as a mouse makes a dot."""
    return (line((x - 3, y - 2), (x + 3, y + 2)), False)


def star_points(cx: float, cy: float, outer: float, inner: float, points: int, squash: float = 1.0,
                turn: float = -90.0) -> np.ndarray:
    step = 180 / points
    corners = [polar(0, 0, outer if i % 2 == 0 else inner, turn + step * i) for i in range(2 * points + 1)]
    return np.array([(cx + x, cy + y * squash) for x, y in corners])


def shapes() -> dict[str, list[Shape]]:
    """Every drawing: name -> strokes (document px on the 512 sheet, y down)."""
    old = freehand.shapes()  # smiley, heart, star, sun, fish and apple as freehand.py draws them
    eyes = [ring(circle(190, 200, 14, ry=24)), ring(circle(322, 200, 14, ry=24))]
    banana = np.concatenate([arc(256, 130, 200, 230, 20, 160), line((68, 209), (82, 192), (96, 181)),
                             arc(256, 130, 160, 150, 160, 20), line((416, 181), (436, 150), (456, 156), (444, 209))])
    lemon = np.concatenate([bezier((58, 266), (120, 95), (390, 90), (454, 246)),
                            bezier((454, 246), (390, 420), (120, 425), (58, 266))])
    leaf = np.concatenate([bezier((110, 410), (90, 200), (260, 80), (430, 90)),
                           bezier((430, 90), (440, 250), (300, 420), (110, 410))])
    theta = np.radians(np.linspace(-90, 270, 220))
    crown_r = 150 + 24 * np.abs(np.sin(3.5 * (theta + np.pi / 2)))
    crown = np.stack([256 + crown_r * np.cos(theta), 190 + 0.82 * crown_r * np.sin(theta)], 1)
    cactus = np.concatenate([
        line((216, 450), (216, 330), (160, 330)), arc(160, 300, 30, 30, 90, 180), line((130, 300), (130, 200)),
        arc(155, 200, 25, 25, 180, 360), line((180, 200), (180, 290), (216, 290), (216, 130)),
        arc(256, 130, 40, 40, 180, 360), line((296, 130), (296, 260), (340, 260), (340, 160)),
        arc(365, 160, 25, 25, 180, 360), line((390, 160), (390, 270)), arc(360, 270, 30, 30, 0, 90),
        line((360, 300), (296, 300), (296, 450), (216, 450))])
    drop = np.concatenate([bezier((256, 60), (230, 140), (116, 220), (116, 320)), arc(256, 320, 140, 140, 180, 0),
                           bezier((396, 320), (396, 220), (282, 140), (256, 60))])
    flame = np.concatenate([
        arc(256, 360, 140, 110, 0, 180), bezier((116, 360), (96, 280), (140, 230), (150, 160)),
        bezier((150, 160), (185, 215), (200, 228), (212, 232)), bezier((212, 232), (198, 160), (228, 100), (262, 45)),
        bezier((262, 45), (300, 120), (322, 170), (318, 212)), bezier((318, 212), (340, 196), (352, 166), (356, 130)),
        bezier((356, 130), (414, 220), (414, 300), (396, 360))])
    inner_flame = np.concatenate([bezier((256, 448), (200, 448), (204, 370), (256, 310)),
                                  bezier((256, 310), (308, 370), (312, 448), (256, 448))])
    carrot = np.concatenate([bezier((190, 150), (195, 108), (317, 108), (322, 150)),
                             bezier((322, 150), (316, 300), (284, 420), (258, 478)),
                             bezier((258, 478), (232, 420), (196, 300), (190, 150))])
    carrot_leaves = [ring(np.concatenate([bezier((250, 122), (a, 60), (b, 20), (c, 25)),
                                          bezier((c, 25), (d, 40), (e, 80), (262, 122))]))
                     for a, b, c, d, e in ((200, 170, 185, 225, 250), (235, 240, 262, 285, 275),
                                           (290, 325, 345, 345, 300))]
    bear_mouth = np.concatenate([arc(238, 345, 18, 16, 0, 150)[::-1], arc(274, 345, 18, 16, 30, 180)[::-1]])
    chips = [ring(circle(x, y, r, start=a)) for x, y, r, a in
             ((190, 170, 17, 0), (300, 150, 15, 40), (350, 250, 18, 90), (170, 290, 16, 10), (260, 250, 14, 200),
              (300, 350, 17, 120), (200, 380, 15, 60))]
    strawberry = np.concatenate([bezier((110, 180), (90, 310), (200, 420), (256, 472)),
                                 bezier((256, 472), (312, 420), (422, 310), (402, 180)),
                                 bezier((402, 180), (380, 120), (132, 120), (110, 180))])
    seeds = [dot(x, y) for x, y in ((180, 220), (256, 210), (330, 225), (150, 290), (220, 280), (295, 290),
                                    (360, 300), (200, 350), (270, 360), (235, 420), (320, 370))]
    narrower = lambda path: np.stack([256 + 0.9 * (path[:, 0] - 256) - 12, path[:, 1]], 1)  # noqa: E731
    moon = np.concatenate([arc(256, 256, 190, 190, 60, 300), arc(400, 256, 172, 172, 253.5, 106.5)])
    whale = np.concatenate([bezier((70, 300), (60, 150), (300, 120), (390, 255)),
                            line((390, 255), (432, 262), (446, 190), (492, 205), (462, 282), (505, 340), (452, 338),
                                 (425, 300)),
                            bezier((425, 300), (380, 400), (140, 410), (70, 300))])
    cap = np.concatenate([arc(256, 265, 195, 175, 180, 360), bezier((451, 265), (400, 305), (112, 305), (61, 265))])
    cheese = [ring(line((70, 300), (360, 150), (450, 205), (70, 300))),
              stroke(line((70, 300), (70, 395), (450, 372), (450, 205)))]
    holes = [ring(circle(x, y, r, ry=0.8 * r))
             for x, y, r in ((150, 350, 18), (250, 320, 24), (360, 330, 20), (310, 215, 14))]
    pear = np.concatenate([bezier((256, 115), (196, 115), (208, 220), (170, 262)),
                           bezier((170, 262), (78, 345), (128, 470), (256, 465)),
                           bezier((256, 465), (384, 470), (434, 345), (342, 262)),
                           bezier((342, 262), (304, 220), (316, 115), (256, 115))])
    small_leaf = lambda x0, y0, x1, y1, bend: np.concatenate([  # noqa: E731
        bezier((x0, y0), (x0 + (x1 - x0) / 3, y0 - bend), (x1 - (x1 - x0) / 3, y1 - bend), (x1, y1)),
        bezier((x1, y1), (x1 - (x1 - x0) / 3, y1 + bend), (x0 + (x1 - x0) / 3, y0 + bend), (x0, y0))])
    grapes = [ring(circle(x, y, 44, start=a)) for a, (x, y) in enumerate(
        [(124 + 88 * i, 172) for i in range(4)] + [(168 + 88 * i, 252) for i in range(3)]
        + [(212 + 88 * i, 332) for i in range(2)] + [(256, 412)])]
    lips = np.concatenate([bezier((66, 262), (150, 160), (220, 150), (256, 196)),
                           bezier((256, 196), (292, 150), (362, 160), (446, 262)),
                           bezier((446, 262), (380, 410), (132, 410), (66, 262))])
    t = np.linspace(0, 2 * np.pi, 120)
    heart = np.stack([16 * np.sin(t) ** 3,  # freehand.py's heart, its point at (0, 0)
                      -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) - 17], 1)
    clover = []  # three heart-shaped leaves, their points at the middle
    for angle in (-90, 30, 150):
        turn = math.radians(angle + 90)
        rotation = np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]])
        clover.append(ring(np.array(polar(256, 215, 6, angle)) + 6.0 * (np.roll(heart, -30, axis=0) @ rotation)))
    husk = [ring(np.concatenate([bezier((256, 470), (150, 440), (112, 330), (142, 215)),
                                 bezier((142, 215), (190, 320), (220, 400), (256, 470))])),
            ring(np.concatenate([bezier((256, 470), (362, 440), (400, 330), (370, 215)),
                                 bezier((370, 215), (322, 320), (292, 400), (256, 470))]))]
    kernels = [stroke(arc(x, y, 12, 8, 20, 160)) for y in range(90, 380, 42) for x in (226, 256, 286)
               if ((x - 256) / 80) ** 2 + ((y - 230) / 175) ** 2 < 0.7]
    acorn_cap = np.concatenate([arc(256, 205, 155, 95, 180, 360),
                                bezier((411, 205), (385, 248), (127, 248), (101, 205))])
    eggplant = np.concatenate([bezier((150, 190), (130, 310), (180, 480), (330, 490)),
                               bezier((330, 490), (460, 490), (480, 360), (395, 290)),
                               bezier((395, 290), (320, 230), (280, 170), (232, 140)), line((232, 140), (150, 190))])
    return {
        "smiley": old["smiley"],
        "sad-face": [ring(circle(256, 256, 190)), *eyes, stroke(arc(256, 420, 115, 95, 200, 340))],
        "heart": old["heart"],
        "apple": old["apple"],
        "sun": old["sun"],
        "banana": [ring(banana), stroke(arc(256, 130, 180, 190, 55, 125))],
        "lemon": [ring(lemon), stroke(arc(200, 230, 70, 50, 200, 260))],
        "leaf": [ring(leaf), stroke(bezier((110, 410), (200, 300), (320, 180), (425, 95))),
                 stroke(line((110, 410), (68, 458)))]
        + [stroke(line(polar(x, y, 8, a), polar(x, y, 48, a))) for x, y, a in
           ((190, 325, -130), (260, 250, -125), (330, 175, -120), (210, 305, 40), (280, 230, 45), (350, 155, 50))],
        "frog": [ring(circle(256, 310, 205, ry=140)), ring(circle(165, 178, 58)), ring(circle(347, 178, 58)),
                 ring(circle(165, 180, 20)), ring(circle(347, 180, 20)), stroke(arc(256, 290, 140, 90, 25, 155)),
                 dot(236, 270), dot(276, 270)],
        "tree": [ring(crown), stroke(line((228, 318), (218, 470), (294, 470), (284, 318))),
                 stroke(line((256, 470), (256, 400), (230, 360)))],
        "cactus": [ring(cactus), stroke(line((150, 450), (362, 450)))]
        + [stroke(line((x, y), (x + dx, y - 10))) for x, y, dx in
           ((236, 180, -14), (276, 230, 14), (240, 320, -14), (272, 390, 14), (150, 250, -14), (365, 210, 14))],
        "water-drop": [ring(drop), stroke(arc(256, 320, 100, 100, 195, 245))],
        "fish": old["fish"],
        "fire": [ring(flame), ring(inner_flame)],
        "carrot": [ring(carrot), *carrot_leaves, stroke(line((212, 200), (248, 206))),
                   stroke(line((264, 270), (300, 264))), stroke(line((228, 345), (262, 349)))],
        "orange": [ring(circle(256, 280, 180)), stroke(line((256, 100), (252, 72))),
                   ring(small_leaf(258, 92, 350, 62, 22)), dot(200, 220), dot(320, 250), dot(240, 340), dot(330, 360)],
        "bear": [ring(circle(256, 285, 170)), ring(circle(118, 145, 55)), ring(circle(394, 145, 55)),
                 ring(circle(118, 145, 26)), ring(circle(394, 145, 26)), ring(circle(256, 340, 75, ry=58)),
                 ring(circle(256, 312, 22, ry=14)), ring(circle(196, 240, 13)), ring(circle(316, 240, 13)),
                 stroke(line((256, 326), (256, 345))), stroke(bear_mouth)],
        "cookie": [ring(circle(256, 256, 185)), *chips],
        "strawberry": [ring(strawberry), ring(star_points(256, 150, 100, 30, 5, squash=0.5, turn=90)),
                       stroke(line((256, 140), (266, 85))), *seeds],
        "tomato": [ring(circle(256, 290, 178, ry=162)), ring(star_points(256, 140, 90, 26, 5, squash=0.45, turn=90)),
                   stroke(line((256, 132), (262, 85))), stroke(arc(256, 290, 130, 120, 200, 240))],
        "star": old["star"],
        "moon": [ring(moon)],
        "whale": [(narrower(path), closed) for path, closed in (
            ring(whale), ring(circle(140, 262, 10)), stroke(bezier((74, 318), (120, 338), (170, 338), (215, 322))),
            stroke(line((185, 160), (185, 95))), stroke(bezier((185, 105), (165, 70), (145, 75), (135, 92))),
            stroke(bezier((185, 105), (205, 70), (225, 75), (235, 92))))],
        "mushroom": [ring(cap), ring(circle(180, 190, 30)), ring(circle(290, 150, 26)), ring(circle(360, 220, 24)),
                     ring(circle(250, 240, 20)),
                     stroke(np.concatenate([bezier((205, 296), (190, 380), (185, 440), (200, 462)),
                                            line((200, 462), (312, 462)),
                                            bezier((312, 462), (327, 440), (322, 380), (307, 296))]))],
        "cheese": cheese + holes,
        "pear": [ring(pear), stroke(line((256, 118), (268, 70))), ring(small_leaf(266, 90, 340, 72, 18))],
        "grapes": grapes + [stroke(bezier((256, 128), (258, 100), (262, 80), (275, 55))),
                            ring(small_leaf(264, 95, 360, 80, 20))],
        "pig": [ring(circle(256, 285, 178, ry=158)),
                stroke(line(polar(256, 285, 178, 222), (108, 70), polar(256, 285, 178, 250))),
                stroke(line(polar(256, 285, 178, 290), (404, 70), polar(256, 285, 178, 318))),
                ring(circle(256, 330, 64, ry=44)), ring(circle(232, 330, 9, ry=14)), ring(circle(280, 330, 9, ry=14)),
                ring(circle(190, 240, 12)), ring(circle(322, 240, 12))],
        "chick": [ring(circle(256, 290, 165)), ring(circle(205, 235, 12)), ring(circle(307, 235, 12)),
                  ring(line((236, 268), (256, 252), (276, 268), (256, 296), (236, 268))),
                  stroke(bezier((125, 285), (165, 300), (170, 350), (135, 372))),
                  stroke(bezier((387, 285), (347, 300), (342, 350), (377, 372))),
                  stroke(line((220, 455), (215, 490), (200, 500))), stroke(line((215, 490), (228, 502))),
                  stroke(line((292, 455), (297, 490), (284, 500))), stroke(line((297, 490), (312, 502))),
                  stroke(bezier((256, 126), (245, 95), (230, 90), (225, 80))),
                  stroke(bezier((256, 126), (265, 95), (280, 90), (290, 82)))],
        "lips": [ring(lips), stroke(bezier((66, 262), (180, 248), (332, 248), (446, 262)))],
        "clover": clover + [stroke(bezier((256, 222), (255, 330), (245, 420), (225, 490)))],
        "pumpkin": [ring(np.concatenate([bezier((256, 165), (300, 135), (460, 130), (462, 300)),
                                         bezier((462, 300), (460, 470), (300, 465), (256, 448)),
                                         bezier((256, 448), (212, 465), (52, 470), (50, 300)),
                                         bezier((50, 300), (52, 130), (212, 135), (256, 165))]))]
        + [stroke(bezier((256, 166), (256 + side * width, 190), (256 + side * width, 420), (256, 446)))
           for side in (-1, 1) for width in (95, 205)]
        + [stroke(line((244, 166), (232, 95), (266, 88), (270, 166)))],
        "corn": [ring(circle(256, 230, 82, ry=178))] + husk + kernels,
        "acorn": [ring(acorn_cap), stroke(line((246, 112), (244, 78), (268, 78), (266, 112))),
                  stroke(np.concatenate([bezier((130, 232), (120, 350), (210, 430), (256, 472)),
                                         bezier((256, 472), (302, 430), (392, 350), (382, 232))]))],
        "eggplant": [ring(eggplant), ring(star_points(198, 172, 82, 34, 5, squash=0.7, turn=120)),
                     stroke(line((190, 150), (165, 75)))],
    }


@functools.cache
def drawings(side: int, brush_factor: float | None) -> dict[str, np.ndarray]:
    """Every drawing, drawn through the canvas by ``freehand``'s simulated hand, with the default brush
    times ``brush_factor``."""
    return freehand.drawn(side, shapes(), brush_factor)


@functools.cache
def default_brush() -> float:
    """The brush width a fresh canvas starts with (document px)."""
    canvas = Canvas(SketchDocument(SIDE))
    brush = canvas.brush
    canvas.deleteLater()
    return brush


def body_area(drawing: np.ndarray, side: int, point: tuple[float, float] | None) -> np.ndarray:
    """The thing's body at ``side`` px: a closed piece of paper, the largest or the one under ``point``."""
    small = cv2.resize(drawing, (side, side), interpolation=cv2.INTER_AREA)
    walls = cv2.dilate((small < 200).astype(np.uint8), np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents((1 - walls).astype(np.uint8), connectivity=4)
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]).tolist()))
    inside = [label for label in range(1, count) if label not in border]
    if not inside:
        return np.zeros((side, side), bool)
    if point is None:
        sizes = [(labels == label).sum() for label in inside]
        return labels == inside[int(np.argmax(sizes))]
    x, y = (int(round(v * side / SIDE)) for v in point)
    near = labels[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].ravel()
    near = near[np.isin(near, inside)]
    if near.size == 0:
        return np.zeros((side, side), bool)
    return labels == np.bincount(near).argmax()


def hsv(result: np.ndarray) -> np.ndarray:
    """(h, w, 3): hue 0-360, saturation and value 0-1."""
    return cv2.cvtColor(result.astype(np.float32) / 255, cv2.COLOR_RGB2HSV)


def median_hue(hues: np.ndarray) -> float:
    """The median of angles: unwrapped around their circular mean, so reds do not split into 350 and 10."""
    if hues.size == 0:
        return float("nan")
    angles = np.radians(hues)
    centre = math.degrees(math.atan2(np.sin(angles).mean(), np.cos(angles).mean()))
    return float((np.median((hues - centre + 180) % 360) + centre - 180) % 360)


def hue_in(hue: float, low: float, high: float) -> bool:
    return not math.isnan(hue) and (low <= hue <= high if low <= high else (hue >= low or hue <= high))


def colour_word(hue: float, saturation: float, value: float) -> str:
    if math.isnan(hue) or saturation < 0.1:
        return "grey" if value < 0.85 else "white"
    if saturation < MIN_SATURATION:
        return "pale " + colour_word(hue, 1.0, value)
    if 10 <= hue < 45 and value <= 0.75:
        return "brown"
    for top, word in ((15, "red"), (35, "orange"), (45, "golden"), (75, "yellow"), (170, "green"), (180, "cyan"),
                      (260, "blue"), (300, "purple"), (340, "pink"), (361, "red")):
        if hue < top:
            return word
    return "red"


def score(thing: Thing, drawing: np.ndarray, result: np.ndarray) -> dict[str, Any]:
    side = result.shape[0]
    body = body_area(drawing, side, thing.body)
    word, low, high, top_value = thing.colour
    row: dict[str, Any] = {"drawing": thing.name, "expected": word, "hue_range": [low, high], "max_value": top_value,
                           "body_share": float(body.mean())}
    if not body.any():
        row.update(hue=float("nan"), saturation=0.0, value=0.0, got="no body", ok=False)
    else:
        pixels = hsv(result)[body]
        coloured = pixels[pixels[:, 1] >= HUE_SATURATION, 0]
        hue = median_hue(coloured if coloured.size else pixels[:, 0])
        saturation, value = float(np.median(pixels[:, 1])), float(np.median(pixels[:, 2]))
        ok = hue_in(hue, low, high) and saturation >= MIN_SATURATION and (top_value is None or value <= top_value)
        row.update(hue=hue, saturation=saturation, value=value, got=colour_word(hue, saturation, value), ok=bool(ok))
    row.update(freehand.measure(drawing, result))
    return row


def tint(drawing: np.ndarray, body: np.ndarray, colour: tuple[str, float, float, float | None]) -> np.ndarray:
    """The drawing in RGB with the scored body washed in the expected colour."""
    _, low, high, top_value = colour
    middle = ((low + ((high - low) % 360) / 2) % 360) / 2  # OpenCV's uint8 hue is degrees / 2
    swatch = cv2.cvtColor(np.uint8([[[middle, 90, 255 if top_value is None else 190]]]), cv2.COLOR_HSV2RGB)[0, 0]
    big = cv2.resize(body.astype(np.uint8), drawing.shape[::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    rgb = np.repeat(drawing[:, :, None], 3, axis=2).astype(np.float32)
    rgb[big] = rgb[big] * swatch / 255
    return rgb.astype(np.uint8)


Row = tuple[np.ndarray, np.ndarray, dict[str, Any]]  # drawing, result, scores


def sheet(title: str, subtitle: str, rows: list[tuple[Thing, dict[str, Row]]]) -> Image.Image:
    width = LABEL_W + 4 * CELL + 6 * GAP
    height = HEADER_H + len(rows) * (CELL + GAP)
    picture = Image.new("RGB", (width, height), (236, 236, 236))
    pen = ImageDraw.Draw(picture)
    big, small = ImageFont.load_default(16), ImageFont.load_default(11)
    pen.text((GAP, 6), title, fill=(0, 0, 0), font=big)
    pen.text((GAP, 26), subtitle, fill=(60, 60, 60), font=small)
    heads = ("pen: drawing (body tinted)", "pen: completion", "marker: drawing", "marker: completion")
    for column, text in enumerate(heads):
        left = LABEL_W + GAP + column * (CELL + GAP) + (GAP if column > 1 else 0)
        pen.text((left, 46), text, fill=(60, 60, 60), font=small)
    for index, (thing, by_pen) in enumerate(rows):
        top = HEADER_H + index * (CELL + GAP)
        word, low, high, top_value = thing.colour
        pen.text((GAP, top + 8), thing.name, fill=(0, 0, 0), font=big)
        pen.text((GAP, top + 28), f"expect {word}\nhue {low:g}-{high:g}" + (f", v<={top_value:g}" if top_value else ""),
                 fill=(60, 60, 60), font=small)
        for line_no, (pen_name, (drawing, result, row)) in enumerate(by_pen.items()):
            y = top + 64 + line_no * 48
            verdict = "OK" if row["ok"] else "no"
            pen.text((GAP, y), f"{pen_name}: {verdict}, {row['got']}",
                     fill=(0, 110, 0) if row["ok"] else (170, 0, 0), font=small)
            pen.text((GAP, y + 14), f"h {row['hue']:.0f} s {row['saturation']:.2f} v {row['value']:.2f}\n"
                     f"recall {row['recall']:.2f} out {row['outside']:.2f}", fill=(60, 60, 60), font=small)
            rgb = cv2.cvtColor(np.uint8([[[(row['hue'] if not math.isnan(row['hue']) else 0) / 2,
                                           row['saturation'] * 255, row['value'] * 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
            pen.rectangle((LABEL_W - 22, y, LABEL_W - 8, y + 14), fill=tuple(int(c) for c in rgb), outline=(0, 0, 0))
            body = body_area(drawing, result.shape[0], thing.body)
            for column, pixels in enumerate((tint(drawing, body, thing.colour), result)):
                cell = Image.fromarray(pixels).convert("RGB").resize((CELL, CELL), Image.Resampling.LANCZOS)
                left = LABEL_W + GAP + (2 * line_no + column) * (CELL + GAP) + line_no * GAP
                picture.paste(cell, (left, top))
    return picture


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("presets", nargs="*", metavar="PRESET", help="bundled preset id, e.g. emoji-pix2pix")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FILE",
                        help="also a model file (its engine's default settings), shown as NAME")
    parser.add_argument("--out", type=Path, default=DOCS / "evaluation", help="default: docs/evaluation")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: all available)")
    args = parser.parse_args()
    names = [thing.name for thing in THINGS]
    if sorted(names) != sorted(shapes()):
        raise SystemExit(f"THINGS and shapes() differ: {sorted(set(names) ^ set(shapes()))}")
    jobs = freehand.models_to_run(parser, args)
    app = QApplication(sys.argv[:1])  # noqa: F841 - the canvas needs it alive
    device = select_device("cpu")
    configure_cpu_threads(args.threads or None)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model, preset_settings in jobs:
        began = time.perf_counter()
        engine = open_engine(model, device)
        settings = replace((preset_settings or REGISTRY[engine.kind].settings()).updated(seed=SEED), ink_lines=False)
        engine.warm_up(settings)
        side = engine.half_size * 4  # MainWindow: side = model size x 4
        print(f"\n### {name}\n\n| drawing | width | expected | got hue | sat | val | colour | ok | edge recall "
              f"| edge precision | paper colour |\n|---|---|---|---:|---:|---:|---|---|---:|---:|---:|")
        sheet_rows: list[tuple[Thing, dict[str, Row]]] = []
        table: list[dict[str, Any]] = []
        for thing in THINGS:
            by_pen: dict[str, Row] = {}
            for pen_name, factor in PENS.items():
                sketch = drawings(side, factor)[thing.name]
                result = freehand.complete(engine, sketch, settings)
                row = {"name": f"{thing.name}/{pen_name}", "width": pen_name, **score(thing, sketch, result)}
                by_pen[pen_name] = (sketch, result, row)
                table.append(row)
                low, high = row["hue_range"]
                print(f"| {thing.name} | {pen_name} | {row['expected']} ({low:g}-{high:g}) | {row['hue']:.0f} "
                      f"| {row['saturation']:.2f} | {row['value']:.2f} | {row['got']} | {'yes' if row['ok'] else 'no'} "
                      f"| {row['recall']:.2f} | {row['precision']:.2f} | {row['outside']:.2f} |")
            sheet_rows.append((thing, by_pen))
        totals: dict[str, Any] = {"usual_colour": sum(row["ok"] for row in table), "of": len(table)}
        for pen_name in PENS:
            mine = [row for row in table if row["width"] == pen_name]
            totals[f"usual_colour_{pen_name}"] = sum(row["ok"] for row in mine)
            totals[f"edge_recall_{pen_name}"] = float(np.mean([row["recall"] for row in mine]))
            totals[f"edge_precision_{pen_name}"] = float(np.mean([row["precision"] for row in mine]))
        totals["paper_colour_max"] = float(max(row["outside"] for row in table))
        totals["paper_colour_mean"] = float(np.mean([row["outside"] for row in table]))
        summary = (f"{totals['usual_colour']} of {totals['of']} in their usual colour "
                   f"(pen {totals['usual_colour_pen']}, marker {totals['usual_colour_marker']} of {len(THINGS)}); "
                   f"edge recall pen {totals['edge_recall_pen']:.2f}, marker {totals['edge_recall_marker']:.2f}; "
                   f"paper colour max {totals['paper_colour_max']:.2f}, mean {totals['paper_colour_mean']:.2f}")
        print(f"\n**{name}**: {summary}")
        title = f"{name}: {model.name}: usual colours"
        subtitle = (f"{freehand.settings_line(settings, engine)}; pen {default_brush():g} px, "
                    f"marker x{PENS['marker']:g}; {summary}")
        path = args.out / f"usual-colours-{name}.png"
        sheet(title, subtitle, sheet_rows).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        meta = {"model": str(model), "settings": freehand.settings_line(settings, engine), "seed": SEED,
                "brush_px": {pen: default_brush() * (factor or 1.0) for pen, factor in PENS.items()},
                "min_saturation": MIN_SATURATION, "hue_saturation": HUE_SATURATION}
        with open(args.out / f"usual-colours-{name}.json", "w") as out:
            json.dump({"name": name, **meta, "totals": totals,
                       "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                                for row in table]},
                      out, indent=1)
        print(f"wrote {path} and its .json ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
