"""Word sets shared by the router's scoring and its input extraction."""

from __future__ import annotations


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """a an the and or but if then of to in on at by for with from into onto about as is are
    was were be been being am i me my mine we our us you your yours it its this that these those
    there here please pls could would can will shall should may might must do does did done
    doing just some something anything thing things stuff some any all so very really also too
    up out over under again hi hello hey thanks thank ok okay yes no not how what why who when
    where which whose while let lets want wanna need needs like get got have has had give make
    sure them they their he she his her one ones now today new use using run running"""
)
